"""A tenant's contacts: ``/v1/contacts`` (with ``api.contact_imports`` and ``api.segments`` under it).

Everyone of the tenant reads and edits contacts; admins opt them out or in and delete them.

Numbers are normalised to E.164 (``contacts.phones``) and a contact is found again by its number however it is
written, or by the WhatsApp id Meta gave it. Tags and attributes are changed, not replaced (``contacts.store``),
since conversations' rules change them too. An admin's opt-out or opt-in is recorded with who, when and why
beside the customer's STOP/START and Meta's marketing opt-outs (``contacts.optout``); deleting a contact keeps
that history, so a contact imported again after opting out stays opted out.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from sqlalchemy import false, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth import AdminDep, Principal, TenantDep
from api.contact_imports import router as imports_router
from api.contact_models import ContactCreate, ContactPublic, ContactUpdate, OptChange, OptChangePublic
from api.deps import EngineDep
from api.pages import Page, PageDep, keyset, page_of
from api.segments import router as segments_router
from contacts import optout, store
from contacts.phones import InvalidNumber, e164_of_wa_id, normalise, wa_id_of
from db.tables import contact_opt_changes, contacts

router = APIRouter(prefix="/v1", tags=["contacts"])
# Imports first: ``/v1/contacts/imports`` is not a contact id.
router.include_router(imports_router)
router.include_router(segments_router)

ContactId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such contact"}}
MAX_HISTORY = 100


def public(row: Any) -> ContactPublic:
    return ContactPublic(
        id=str(row.id), wa_id=row.wa_id, phone=row.e164 or e164_of_wa_id(row.wa_id)
        or (e164_of_wa_id(row.phone) if row.phone else None), user_id=row.user_id, username=row.username,
        name=row.profile_name,
        tags=row.tags, attributes=row.attributes, opted_out=row.opted_out, opted_out_at=row.opted_out_at,
        opt_source=row.opt_source, opt_actor=row.opt_actor, created_at=row.created_at, updated_at=row.updated_at)


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "contact not found")


def _invalid(field: str, message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         [{"loc": ["body", field], "msg": message, "type": "value_error"}])


def _search(q: str) -> Any:
    digits = "".join(ch for ch in q if ch.isdigit())
    found = [contacts.c.profile_name.icontains(q, autoescape=True), contacts.c.tags.contains([q]),
             contacts.c.username.icontains(q.removeprefix("@"), autoescape=True)]
    if len(digits) >= 3:
        found += [contacts.c.wa_id.contains(digits, autoescape=True),
                  contacts.c.phone.contains(digits, autoescape=True)]
    return or_(*found)


@router.get("/contacts")
async def list_contacts(
    principal: TenantDep, engine: EngineDep, page: PageDep,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="name, number, username or tag")] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=100, description="only contacts with this tag")] = None,
    opted_out: Annotated[bool | None, Query(description="only opted-out (true) or subscribed (false)")] = None,
) -> Page[ContactPublic]:
    """The tenant's contacts, newest first."""
    query = select(contacts).where(contacts.c.tenant_id == principal.tenant_id)
    if q is not None:
        query = query.where(_search(q.strip()))
    if tag is not None:
        query = query.where(contacts.c.tags.contains([tag]))
    if opted_out is not None:
        query = query.where(contacts.c.opted_out.is_(false()) if not opted_out else contacts.c.opted_out)
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, contacts.c.created_at, contacts.c.wa_id, page,
                                              newest_first=True)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, r.wa_id))
    return Page(items=[public(r) for r in shown], next_cursor=cursor)


async def _row(conn: AsyncConnection, tenant_id: str, contact_id: int) -> Any:
    return (await conn.execute(select(contacts).where(
        contacts.c.tenant_id == tenant_id, contacts.c.id == contact_id))).first()


async def _existing(conn: AsyncConnection, tenant_id: str, e164: str) -> Any:
    return (await conn.execute(select(contacts).where(
        contacts.c.tenant_id == tenant_id,
        or_(contacts.c.e164 == e164, contacts.c.wa_id == wa_id_of(e164))).limit(1))).first()


@router.post("/contacts", status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "a contact with this number exists (its id is in the detail)"}})
async def create_contact(body: ContactCreate, principal: TenantDep, engine: EngineDep) -> ContactPublic:
    """Add a contact; 409 when the tenant already has this number (in any form)."""
    try:
        e164 = normalise(body.phone, body.region)
    except InvalidNumber as exc:
        raise _invalid("phone", str(exc)) from exc
    tenant, wa_id = principal.tenant_id, wa_id_of(e164)
    try:
        async with engine.begin() as conn:
            await optout.lock(conn, tenant, [wa_id])
            existing = await _existing(conn, tenant, e164)
            if existing is not None:
                raise HTTPException(status.HTTP_409_CONFLICT, {"message": "a contact with this number exists",
                                                               "id": str(existing.id)})
            await conn.execute(contacts.insert().values(
                tenant_id=tenant, wa_id=wa_id, e164=e164, profile_name=body.name, tags=body.tags,
                attributes=body.attributes))
            await optout.derive(conn, tenant, wa_id)  # a contact deleted after opting out stays opted out
            row = (await conn.execute(select(contacts).where(
                contacts.c.tenant_id == tenant, contacts.c.wa_id == wa_id))).one()
    except IntegrityError as exc:  # created meanwhile by a message, an import or another request
        raise HTTPException(status.HTTP_409_CONFLICT, "a contact with this number exists") from exc
    return public(row)


@router.get("/contacts/{contact_id}", responses=NOT_FOUND)
async def get_contact(contact_id: ContactId, principal: TenantDep, engine: EngineDep) -> ContactPublic:
    """One contact."""
    async with engine.connect() as conn:
        row = await _row(conn, principal.tenant_id, contact_id)
    if row is None:
        raise _not_found()
    return public(row)


@router.patch("/contacts/{contact_id}", responses=NOT_FOUND)
async def update_contact(contact_id: ContactId, body: ContactUpdate, principal: TenantDep,
                         engine: EngineDep) -> ContactPublic:
    """Add or remove tags, set or remove attributes, rename."""
    tenant = principal.tenant_id
    async with engine.begin() as conn:
        row = await _row(conn, tenant, contact_id)
        if row is None:
            raise _not_found()
        await optout.lock(conn, tenant, [row.wa_id])
        try:
            if body.add_tags or body.remove_tags:
                await store.change_tags(conn, tenant, row.wa_id, add=body.add_tags, remove=body.remove_tags,
                                        limit=store.MAX_TAGS)
            if body.attributes or body.remove_attributes:
                await store.set_attributes(conn, tenant, row.wa_id, body.attributes, remove=body.remove_attributes,
                                           limit=store.MAX_ATTRIBUTES)
        except store.TooMany as exc:
            raise _invalid("add_tags" if "tags" in str(exc) else "attributes", str(exc)) from exc
        if body.name is not None:
            await conn.execute(contacts.update().where(contacts.c.tenant_id == tenant, contacts.c.id == contact_id)
                               .values(profile_name=body.name))
        row = await _row(conn, tenant, contact_id)
    return public(row)


async def _opt(contact_id: int, body: OptChange, principal: Principal, engine: AsyncEngine,
               opted_out: bool) -> ContactPublic:
    tenant = principal.tenant_id
    async with engine.begin() as conn:
        row = await _row(conn, tenant, contact_id)
        if row is None:
            raise _not_found()
        await optout.lock(conn, tenant, [row.wa_id])
        await optout.record(conn, event_id=f"admin:{uuid.uuid4()}", tenant_id=tenant, wa_id=row.wa_id,
                            opted_out=opted_out, at=datetime.now(UTC), source="admin", actor=principal.actor,
                            detail=body.reason)
        row = await _row(conn, tenant, contact_id)
    return public(row)


@router.post("/contacts/{contact_id}/opt-out", responses=NOT_FOUND)
async def opt_out(contact_id: ContactId, body: OptChange, principal: AdminDep, engine: EngineDep) -> ContactPublic:
    """Opt the contact out of campaigns (recorded with the admin and the reason; the body may be ``{}``)."""
    return await _opt(contact_id, body, principal, engine, True)


@router.post("/contacts/{contact_id}/opt-in", responses=NOT_FOUND)
async def opt_in(contact_id: ContactId, body: OptChange, principal: AdminDep, engine: EngineDep) -> ContactPublic:
    """Opt the contact back in (recorded with the admin and the reason)."""
    return await _opt(contact_id, body, principal, engine, False)


@router.get("/contacts/{contact_id}/opt-history", responses=NOT_FOUND)
async def opt_history(contact_id: ContactId, principal: TenantDep, engine: EngineDep) -> list[OptChangePublic]:
    """The contact's opt-outs and opt-ins, newest first (the last 100): when, from where, by whom."""
    ch = contact_opt_changes.c
    async with engine.connect() as conn:
        row = await _row(conn, principal.tenant_id, contact_id)
        if row is None:
            raise _not_found()
        changes = (await conn.execute(select(ch.opted_out, ch.at, ch.source, ch.actor, ch.detail).where(
            ch.tenant_id == principal.tenant_id, ch.wa_id == row.wa_id)
            .order_by(ch.at.desc(), ch.event_id.desc()).limit(MAX_HISTORY))).all()
    return [OptChangePublic(opted_out=c.opted_out, at=c.at, source=c.source, actor=c.actor, detail=c.detail)
            for c in changes]


@router.delete("/contacts/{contact_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_contact(contact_id: ContactId, principal: AdminDep, engine: EngineDep) -> Response:
    """Remove a contact (its conversations and its opt-out history stay)."""
    async with engine.begin() as conn:
        deleted = (await conn.execute(contacts.delete().where(
            contacts.c.tenant_id == principal.tenant_id, contacts.c.id == contact_id)
            .returning(contacts.c.id))).first()
    if deleted is None:
        raise _not_found()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
