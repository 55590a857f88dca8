"""The template registry API: ``/v1/templates``. Everyone of the tenant reads it; admins change it.

Creating, deleting and syncing go to the dispatcher (the only Meta caller) over ``templates.requests``
and answer 202 once the broker has the request; the projector writes what came of it, and Meta's
webhooks keep the status, quality and category current. A creation is validated here first
(``templates.check_create``): a 422 names every field that Meta would refuse. ``refuse_template`` is the
send API's pre-send check of a template message.
"""

from __future__ import annotations

import uuid
import weakref
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import AdminDep, Principal, TenantDep
from api.deps import EngineDep, ProducerDep, SettingsDep
from api.pages import Page, PageDep, keyset, page_of
from api.template_models import SendRefusal, SyncPublic, TemplateError, TemplatePublic, TemplateRequested
from broker.producer import AsyncProducer, DeliveryError
from config.settings import IngressSettings
from db.tables import message_templates, template_syncs, whatsapp_accounts
from schemas.catalogue import TEMPLATES_REQUESTS
from schemas.templates import TemplateAction, TemplateRequest
from templates import TemplateCreate, TemplateSendError, check_create, render, variables
from templates.creation import NAME_PATTERN
from templates.model import RECREATABLE
from templates.registry import Registry, row_template, template_id

router = APIRouter(prefix="/v1", tags=["templates"])

WabaQuery = Annotated[str | None, Query(pattern=r"^[0-9]{1,32}$", description="needed with several accounts")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such template"}}
_registries: weakref.WeakKeyDictionary[AsyncEngine, Registry] = weakref.WeakKeyDictionary()


def _public(row: Any) -> TemplatePublic:
    template = row_template(row)
    error = TemplateError(code=row.error_code, message=row.error_message) \
        if row.error_code is not None or row.error_message else None
    return TemplatePublic(
        id=str(row.id), waba_id=row.waba_id, name=row.name, language=row.language, category=row.category,
        status=row.status, status_reason=row.status_reason, quality=row.quality,
        previous_category=row.previous_category, parameter_format=row.parameter_format, components=row.components,
        variables=[v.ref for v in variables(template)], preview=render(template), meta_id=row.meta_id, error=error,
        created_at=row.created_at, updated_at=row.updated_at)


@router.get("/templates")
async def list_templates(
    principal: TenantDep, engine: EngineDep, page: PageDep,
    name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    template_status: Annotated[str | None, Query(alias="status", pattern=r"^[A-Z_]{1,32}$")] = None,
    language: Annotated[str | None, Query(max_length=16)] = None, waba_id: WabaQuery = None,
) -> Page[TemplatePublic]:
    """The tenant's templates (every WABA, every language), oldest first; filters are exact."""
    t = message_templates.c
    query = select(message_templates).where(t.tenant_id == principal.tenant_id)
    for column, value in ((t.name, name), (t.status, template_status), (t.language, language), (t.waba_id, waba_id)):
        if value is not None:
            query = query.where(column == value)
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, t.created_at, t.id, page)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
    return Page(items=[_public(r) for r in shown], next_cursor=cursor)


@router.get("/templates/syncs")
async def list_syncs(principal: TenantDep, engine: EngineDep) -> list[SyncPublic]:
    """The last registry sync of each of the tenant's WABAs."""
    async with engine.connect() as conn:
        rows = list(await conn.execute(select(template_syncs).where(template_syncs.c.tenant_id == principal.tenant_id)
                                       .order_by(template_syncs.c.waba_id).limit(1000)))
    return [SyncPublic(waba_id=r.waba_id, request_id=r.request_id, status=r.status, templates=r.templates,
                       error=TemplateError(code=r.error_code, message=r.error_message)
                       if r.status == "failed" else None, synced_at=r.synced_at, finished_at=r.finished_at)
            for r in rows]


@router.get("/templates/{template_id}", responses=NOT_FOUND)
async def get_template(template_id: Annotated[uuid.UUID, Path()], principal: TenantDep,
                       engine: EngineDep) -> TemplatePublic:
    """One template in one language: status, quality, category, components, variables and a preview."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(message_templates).where(
            message_templates.c.id == str(template_id), message_templates.c.tenant_id == principal.tenant_id))).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "template not found")
    return _public(row)


@router.post("/templates", status_code=status.HTTP_202_ACCEPTED, responses={
    409: {"description": "the template exists in that language (and was not rejected, failed or deleted)"},
    422: {"description": "every field Meta would refuse, by location"}})
async def create_template(body: TemplateCreate, principal: AdminDep, engine: EngineDep, producer: ProducerDep,
                          settings: SettingsDep) -> TemplateRequested:
    """Submit a new template to Meta; its status (PENDING, then APPROVED or REJECTED) comes by webhook."""
    problems = check_create(body)
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [
            {"type": "value_error", "loc": ["body", *p.loc], "msg": p.msg} for p in problems])
    waba_id = (await _wabas(engine, principal.tenant_id, body.waba_id))[0]
    key = template_id(principal.tenant_id, waba_id, body.name, body.language)
    async with engine.connect() as conn:
        held = (await conn.execute(select(message_templates.c.status).where(
            message_templates.c.id == key, message_templates.c.tenant_id == principal.tenant_id))).scalar()
    if held is not None and held not in RECREATABLE:
        raise HTTPException(status.HTTP_409_CONFLICT, f"template {body.name} ({body.language}) already exists: {held}")
    request = _request(principal, waba_id, "create", template=body.meta_body())
    await _publish(producer, settings, request)
    return TemplateRequested(id=key, request_id=request.request_id, waba_id=waba_id, name=body.name,
                             language=body.language, status="SUBMITTING")


@router.delete("/templates/{name}", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND)
async def delete_template(name: Annotated[str, Path(pattern=NAME_PATTERN)], principal: AdminDep,
                          engine: EngineDep, producer: ProducerDep, settings: SettingsDep,
                          waba_id: WabaQuery = None) -> TemplateRequested:
    """Delete a template in every language (Meta deletes by name)."""
    wabas = await _wabas(engine, principal.tenant_id, waba_id)
    async with engine.connect() as conn:
        found = (await conn.execute(select(message_templates.c.waba_id).where(
            message_templates.c.tenant_id == principal.tenant_id, message_templates.c.name == name,
            message_templates.c.waba_id.in_(wabas), message_templates.c.status != "DELETED").limit(2))).scalars().all()
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "template not found")
    if len(set(found)) > 1:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'waba_id' is required: several accounts hold "
                                                                   "a template of this name")
    request = _request(principal, found[0], "delete", name=name)
    await _publish(producer, settings, request)
    return TemplateRequested(request_id=request.request_id, waba_id=found[0], name=name, status="DELETING")


@router.post("/templates/sync", status_code=status.HTTP_202_ACCEPTED)
async def sync_templates(principal: AdminDep, engine: EngineDep, producer: ProducerDep, settings: SettingsDep,
                         waba_id: WabaQuery = None) -> list[TemplateRequested]:
    """Read every template of the tenant's WABAs (or of ``waba_id``) from Meta again."""
    requests = [_request(principal, waba, "sync") for waba in await _wabas(engine, principal.tenant_id, waba_id,
                                                                           single=False)]
    for request in requests:
        await _publish(producer, settings, request)
    return [TemplateRequested(request_id=r.request_id, waba_id=r.waba_id, status="SYNCING") for r in requests]


async def _wabas(engine: AsyncEngine, tenant_id: str, requested: str | None, *, single: bool = True) -> list[str]:
    """The tenant's connected WABAs: ``requested``, or all of them (its only one when ``single``)."""
    query = select(whatsapp_accounts.c.waba_id).where(whatsapp_accounts.c.tenant_id == tenant_id,
                                                      whatsapp_accounts.c.status == "connected")
    if requested is not None:
        query = query.where(whatsapp_accounts.c.waba_id == requested)
    async with engine.connect() as conn:
        found = list((await conn.execute(query.order_by(whatsapp_accounts.c.waba_id).limit(100))).scalars())
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown WhatsApp Business Account" if requested
                            else "no connected WhatsApp Business Account")
    if single and len(found) > 1:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "'waba_id' is required: the tenant has more than one WhatsApp Business Account")
    return found


def _request(principal: Principal, waba_id: str, action: TemplateAction, **fields: Any) -> TemplateRequest:
    request_id = str(uuid.uuid4())
    return TemplateRequest(event_id=request_id, request_id=request_id, tenant_id=principal.tenant_id,
                           waba_id=waba_id, action=action, requested_by=principal.actor,
                           requested_at=datetime.now(UTC), **fields)


async def _publish(producer: AsyncProducer, settings: IngressSettings, request: TemplateRequest) -> None:
    try:
        await producer.send(TEMPLATES_REQUESTS.full_name(settings.topic_prefix), value=request.encode(),
                            key=request.waba_id.encode())
    except DeliveryError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the request could not be queued; retry",
                            headers={"Retry-After": "1"}) from exc


async def refuse_template(engine: AsyncEngine, tenant_id: str, phone_number_id: str, message: dict[str, Any]) -> None:
    """422 with ``SendRefusal`` when ``message`` is a template message Meta would refuse (read uncached, so a
    pause recorded a moment ago is seen)."""
    registry = _registries.get(engine)
    if registry is None:
        registry = _registries[engine] = Registry(engine, ttl_s=0.0)
    waba_id = await registry.waba_of(tenant_id, phone_number_id)
    if waba_id is None:
        return
    try:
        await registry.check(tenant_id, waba_id, message)
    except TemplateSendError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, SendRefusal(
            code=exc.code, reason=exc.reason, meta_code=exc.meta_code).model_dump()) from exc
