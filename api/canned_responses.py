"""An inbox's saved replies: ``/v1/canned-responses``. Everyone of the tenant lists them; admins edit them.

A shortcut is unique in its tenant (409 when taken); a tenant keeps at most ``MAX_RESPONSES`` (422
past it; creations are serialised per tenant by a transaction-scoped advisory lock, so two at once
never pass the cap together). The list is the API's one page contract, oldest first; ``q`` keeps the
shortcuts that start with it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import AdminDep, TenantDep
from api.canned_response_models import CannedResponseCreate, CannedResponsePublic
from api.deps import EngineDep
from api.pages import Page, PageDep, keyset, page_of
from api.unique import check_cap, unique_write
from db.tables import canned_responses

router = APIRouter(prefix="/v1", tags=["canned responses"])

MAX_RESPONSES = 500
ResponseId = Annotated[uuid.UUID, Path()]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such canned response"}}
TAKEN: dict[int | str, dict[str, Any]] = {409: {"description": "the tenant already has this shortcut"}}


def _public(row: Any) -> CannedResponsePublic:
    return CannedResponsePublic(id=str(row.id), shortcut=row.shortcut, text=row.text, updated_at=row.updated_at)


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "canned response not found")


def _taken(shortcut: str) -> str:
    return f"the shortcut {shortcut!r} is already in use"


async def _lock(conn: AsyncConnection, tenant_id: str) -> None:
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"canned_responses:{tenant_id}", 0))))


@router.get("/canned-responses", responses={200: {"content": {"application/json": {"example": {
    "items": CannedResponsePublic.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
    "next_cursor": None}}}}})
async def list_canned_responses(
        principal: TenantDep, engine: EngineDep, page: PageDep,
        q: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_-]*$",
                                       description="keep the shortcuts that start with this")] = None,
) -> Page[CannedResponsePublic]:
    """The tenant's saved replies, oldest first (those whose shortcut starts with ``q`` when given)."""
    query = select(canned_responses).where(canned_responses.c.tenant_id == principal.tenant_id)
    if q:
        query = query.where(func.starts_with(canned_responses.c.shortcut, q.lower()))
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, canned_responses.c.created_at, canned_responses.c.id, page)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
    return Page(items=[_public(r) for r in shown], next_cursor=cursor)


@router.post("/canned-responses", status_code=status.HTTP_201_CREATED,
             responses={**TAKEN, 422: {"description": "invalid, or the tenant has 500 already"}})
async def create_canned_response(body: CannedResponseCreate, principal: AdminDep,
                                 engine: EngineDep) -> CannedResponsePublic:
    """Save a reply under a shortcut."""
    tenant = principal.tenant_id
    async with unique_write(engine, _taken(body.shortcut)) as conn:
        await _lock(conn, tenant)
        await check_cap(conn, canned_responses, tenant, MAX_RESPONSES,
                        f"a tenant keeps at most {MAX_RESPONSES} canned responses")
        row = (await conn.execute(canned_responses.insert().values(
            id=str(uuid.uuid4()), tenant_id=tenant, **body.model_dump()).returning(*canned_responses.c))).one()
    return _public(row)


@router.put("/canned-responses/{response_id}", responses={**NOT_FOUND, **TAKEN})
async def replace_canned_response(response_id: ResponseId, body: CannedResponseCreate, principal: AdminDep,
                                  engine: EngineDep) -> CannedResponsePublic:
    """Change a saved reply's shortcut and text."""
    async with unique_write(engine, _taken(body.shortcut)) as conn:
        row = (await conn.execute(update(canned_responses).where(
            canned_responses.c.tenant_id == principal.tenant_id, canned_responses.c.id == str(response_id))
            .values(**body.model_dump(), updated_at=func.now()).returning(*canned_responses.c))).first()
    if row is None:
        raise _not_found()
    return _public(row)


@router.delete("/canned-responses/{response_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_canned_response(response_id: ResponseId, principal: AdminDep, engine: EngineDep) -> Response:
    """Remove a saved reply."""
    async with engine.begin() as conn:
        deleted = (await conn.execute(canned_responses.delete().where(
            canned_responses.c.tenant_id == principal.tenant_id, canned_responses.c.id == str(response_id))
            .returning(canned_responses.c.id))).first()
    if deleted is None:
        raise _not_found()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
