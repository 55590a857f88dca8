"""Template campaigns: ``/v1/campaigns``. Admins create, test, launch, pause, resume and cancel; everyone of
the tenant reads them.

Create stores a draft (a CSV audience is read, normalised and kept row by row); launch publishes one job to
``campaigns.commands`` and marks the campaign ``running`` (or ``scheduled`` for a later ``send_at``) in
PostgreSQL and in the Redis copy the dispatcher reads before each of the campaign's sends, so pause and
cancel stop the next call at once. ``GET /v1/campaigns/{id}`` shows the funnel counted from the recipients,
the progress and an ETA; ``/recipients`` lists them by state (paged, or all as CSV).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth import AdminDep, TenantDep
from api.campaign_models import CampaignCreate, CampaignView, PreviewRequest, RecipientView, TestSend
from api.deps import EngineDep, ProducerDep, RedisDep, SettingsDep
from api.messages import queue_send, send_command, sender_number
from api.pages import Page, PageDep, keyset, page_of
from api.reference import json_example
from broker.producer import DeliveryError
from campaigns import store
from campaigns.audience import AudienceRow, CsvAudience, CsvError, RetargetAudience, SegmentAudience, parse_csv
from campaigns.cost import estimate, parse_rates
from campaigns.states import CampaignState, RecipientState, TransitionError, transition
from campaigns.templates_lookup import campaign_template
from campaigns.variables import MissingVariable, VariableSource, resolve
from contacts.phones import InvalidNumber, normalise, wa_id_of
from contacts.segments import SegmentFilter, count, query
from contacts.segments import load as load_segment
from db.tables import campaign_audience_rows, campaign_recipients, campaigns, contacts
from schemas.campaigns import CampaignJob
from schemas.catalogue import CAMPAIGNS_COMMANDS
from templates import Template, TemplateSendError, render, send_components, validate_send, variables
from vault.store import AccountStatus

router = APIRouter(prefix="/v1", tags=["campaigns"])

CampaignId = Annotated[uuid.UUID, Path()]
MAX_ESTIMATE = 100_000
EXPORT_PAGE = 2000
HELD_ACCOUNTS = frozenset({AccountStatus.NEEDS_REAUTH, AccountStatus.DISCONNECTED})  # the dispatcher holds their sends
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such campaign"}}
RECIPIENT_EXAMPLE = RecipientView.model_json_schema()["examples"][0]


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": ["body", *field.split(".")], "msg": message}])


# --- create ----------------------------------------------------------------------------------------------

@router.post("/campaigns", status_code=status.HTTP_201_CREATED)
async def create_campaign(body: CampaignCreate, principal: AdminDep, engine: EngineDep) -> CampaignView:
    """A draft campaign: template and language, audience (segment, CSV or retarget), variables, schedule."""
    tenant = principal.tenant_id
    sender, template = await _sender_and_template(engine, tenant, body)
    async with engine.begin() as conn:
        stored, size, rows = await _audience(conn, tenant, body)
        campaign_id = str(uuid.uuid4())
        await conn.execute(campaigns.insert().values(
            id=campaign_id, tenant_id=tenant, **_draft_columns(body, sender, template, stored, size)))
        await _keep_rows(conn, campaign_id, rows)
        row = await store.load(conn, campaign_id, tenant)
    assert row is not None
    return _view(row)


@router.put("/campaigns/{campaign_id}", responses={
    **NOT_FOUND, 409: {"description": "the campaign is no longer a draft (launched, scheduled or cancelled)"}})
async def replace_draft(campaign_id: CampaignId, body: CampaignCreate, principal: AdminDep,
                        engine: EngineDep) -> CampaignView:
    """Change a draft as a whole (what create takes); the console's wizard edits its draft this way."""
    tenant = principal.tenant_id
    async with engine.connect() as conn:  # another tenant's campaign is a 404 whatever the body says
        await _campaign(conn, campaign_id, tenant)
    sender, template = await _sender_and_template(engine, tenant, body)
    async with engine.begin() as conn:
        current = await _campaign(conn, campaign_id, tenant)
        stored, size, rows = await _audience(conn, tenant, body)
        changed = (await conn.execute(campaigns.update().where(
            campaigns.c.id == current.id, campaigns.c.tenant_id == tenant,
            campaigns.c.state == CampaignState.DRAFT.value).values(
            **_draft_columns(body, sender, template, stored, size), updated_at=func.now())
            .returning(campaigns.c.id))).first()
        if changed is None:  # launched or cancelled before this change (the update waited for its lock)
            raise HTTPException(status.HTTP_409_CONFLICT, "only a draft campaign can be changed")
        await conn.execute(campaign_audience_rows.delete().where(campaign_audience_rows.c.campaign_id == current.id))
        await _keep_rows(conn, current.id, rows)
        row = await store.load(conn, current.id, tenant)
    assert row is not None
    return _view(row)


async def _sender_and_template(engine: AsyncEngine, tenant: str, body: CampaignCreate) -> tuple[str, Template]:
    """The number the campaign sends from and its approved template, the variables checked against it (422)."""
    sender = await sender_number(engine, tenant, body.from_)
    async with engine.connect() as conn:
        template = await campaign_template(conn, tenant, sender, body.template.name, body.template.language)
    if template is None:
        raise _unprocessable("template", f"no template {body.template.name} ({body.template.language}) in the "
                                         "registry of this number's WhatsApp account")
    if template.status.upper() not in ("APPROVED", "FLAGGED"):
        raise _unprocessable("template", f"the template is {template.status}, not APPROVED")
    _check_variables(template, body.variables)
    return sender, template


async def _audience(conn: AsyncConnection, tenant: str,
                    body: CampaignCreate) -> tuple[dict[str, Any], int, list[AudienceRow]]:
    """The audience as stored, its size, and a CSV audience's rows (422 naming what is wrong)."""
    audience = body.audience
    stored = audience.model_dump(mode="json", exclude={"csv"})
    if isinstance(audience, CsvAudience):
        try:
            rows = parse_csv(audience.csv, audience.phone_column, audience.region)
        except CsvError as exc:
            raise _unprocessable("audience.csv", str(exc)) from exc
        return stored, len(rows), rows
    if isinstance(audience, RetargetAudience):
        if not audience.filter and not audience.states:
            raise _unprocessable("audience.filter", "name a filter (not_read, …) or the states to retarget")
        source = await store.load(conn, audience.campaign_id, tenant) if _is_uuid(audience.campaign_id) else None
        if source is None:
            raise _unprocessable("audience.campaign_id", "the tenant has no such campaign")
        size = int(await conn.scalar(select(func.count()).select_from(campaign_recipients).where(
            campaign_recipients.c.campaign_id == audience.campaign_id,
            campaign_recipients.c.state.in_(audience.wanted()))) or 0)
        return stored, size, []
    segment = await _segment(conn, tenant, audience)
    stored = {"kind": "segment", "segment_id": audience.segment_id, "filter": segment.model_dump(mode="json")}
    return stored, await count(conn, tenant, segment.model_copy(update={"include_opted_out": True})), []


def _draft_columns(body: CampaignCreate, sender: str, template: Template, stored: dict[str, Any],
                   size: int) -> dict[str, Any]:
    """A draft's columns, as create stores them and a change replaces them."""
    return dict(
        name=body.name, phone_number_id=sender, template_name=template.name, template_language=template.language,
        template_category=template.category.lower(), parameter_format=template.parameter_format, audience=stored,
        variables={k: v.model_dump(exclude_none=True) for k, v in body.variables.items()},
        schedule=body.schedule.model_dump(mode="json", exclude_none=True), send_at=body.schedule.start_utc(),
        audience_size=size)


async def _keep_rows(conn: AsyncConnection, campaign_id: str, rows: list[AudienceRow]) -> None:
    """A CSV audience's rows, 5000 an insert."""
    for at in range(0, len(rows), 5000):
        await conn.execute(campaign_audience_rows.insert(), [
            {"campaign_id": campaign_id, "line": r.line, "wa_id": r.wa_id, "raw": r.raw, "columns": r.columns,
             "problem": r.problem} for r in rows[at:at + 5000]])


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _check_variables(template: Template, mapping: dict[str, VariableSource]) -> None:
    refs = {v.ref: v for v in variables(template)}
    for name in mapping:
        if name not in refs:
            raise _unprocessable(f"variables.{name}", f"the template has no variable {name!r} (it has: "
                                                      f"{', '.join(sorted(refs)) or 'none'})")
    for ref, variable in refs.items():
        if not variable.optional and ref not in mapping:
            raise _unprocessable("variables", f"map the template's variable {ref!r}")


async def _segment(conn: AsyncConnection, tenant: str, audience: SegmentAudience) -> SegmentFilter:
    if audience.segment_id is not None:
        found = await load_segment(conn, tenant, audience.segment_id)
        if found is None:
            raise _unprocessable("audience.segment_id", "the tenant has no such segment")
        return found
    if audience.filter is None:
        raise _unprocessable("audience", "give a segment_id or a filter")
    return audience.filter


# --- read ------------------------------------------------------------------------------------------------

@router.get("/campaigns")
async def list_campaigns(principal: TenantDep, engine: EngineDep, page: PageDep) -> Page[CampaignView]:
    """The tenant's campaigns, newest first, each with its funnel, progress, ETA and what it waits for, as one
    campaign's read gives them (two queries for the page, whatever its size)."""
    q = select(campaigns).where(campaigns.c.tenant_id == principal.tenant_id)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")  # one snapshot, as ``get_campaign``'s
        rows = list(await conn.execute(keyset(q, campaigns.c.created_at, campaigns.c.id, page, newest_first=True)))
        shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
        funnels = await store.funnels_of(conn, [str(r.id) for r in shown])
        senders = await store.sending_numbers(conn, shown)
    return Page(items=[_detailed(r, funnels[str(r.id)], senders[(str(r.tenant_id), r.phone_number_id)])
                       for r in shown], next_cursor=cursor)


@router.get("/campaigns/{campaign_id}", responses=NOT_FOUND)
async def get_campaign(campaign_id: CampaignId, principal: TenantDep, engine: EngineDep) -> CampaignView:
    """The campaign with its funnel, progress and ETA."""
    async with engine.connect() as conn:
        # One snapshot: a hold the campaign worker commits between the reads shows in both the funnel and the state.
        await conn.execution_options(isolation_level="REPEATABLE READ")
        row = await _campaign(conn, campaign_id, principal.tenant_id)
        funnel = await store.funnel_of(conn, row.id)
        sender = await store.sending_number(conn, row)
    return _detailed(row, funnel, sender)


def _detailed(row: Row[Any], funnel: dict[str, Any], sender: store.Sender) -> CampaignView:
    """The campaign's view with its funnel, progress, ETA, and its held account as what it waits for."""
    rate, account = sender
    view = _view(row)
    if row.state == CampaignState.RUNNING and account in HELD_ACCOUNTS:
        view.waiting_for = f"account_{account}"  # its sends wait in the dispatcher until the account is reconnected
    view.funnel = funnel
    targeted, queued = int(funnel["targeted"]), int(funnel["queued"])
    total = row.audience_size if row.expanded_at is None and row.audience_size else targeted
    done = targeted - queued
    view.progress = {"done": done, "total": total, "percent": round(100 * done / total, 1) if total else 100.0}
    if row.state == CampaignState.RUNNING and view.waiting_for is None:
        view.eta_s = round(max(0, total - done) / rate, 1)
    return view


async def _campaign(conn: AsyncConnection, campaign_id: uuid.UUID, tenant: str) -> Row[Any]:
    row = await store.load(conn, str(campaign_id), tenant)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "campaign not found")
    return row


def _view(row: Row[Any]) -> CampaignView:
    waiting = "portfolio_budget" if row.state_reason == "waiting_for_tier" else None
    return CampaignView(
        id=str(row.id), name=row.name, state=row.state, state_reason=row.state_reason, waiting_for=waiting,
        phone_number_id=row.phone_number_id, template={"name": row.template_name, "language": row.template_language,
                                                       "category": row.template_category},
        audience=row.audience, audience_size=row.audience_size, variables=row.variables, schedule=row.schedule,
        created_at=row.created_at, launched_at=row.launched_at, finished_at=row.finished_at,
        expanded=row.expanded_at is not None)


State = Annotated[RecipientState | None, Query(description="only recipients in this state")]


@router.get("/campaigns/{campaign_id}/recipients", response_model=None, responses={**NOT_FOUND, 200: {
    "description": "a page of recipients (JSON), or every recipient as CSV with `format=csv`",
    "content": {"application/json": {"example": {"items": [RECIPIENT_EXAMPLE], "next_cursor": "MTI4"}},
                "text/csv": {"example": "contact,wa_id,state,reason,error_code,wamid,sent_at\n"
                                        "15551234567,15551234567,read,,,wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTND,"
                                        "2026-12-05T09:00:03Z\n"}}}})
async def list_recipients(campaign_id: CampaignId, principal: TenantDep, engine: EngineDep, state: State = None,
                          reason: Annotated[str | None, Query(max_length=100)] = None,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50,
                          cursor: Annotated[str | None, Query(max_length=100)] = None,
                          format: Annotated[Literal["json", "csv"], Query()] = "json",
                          ) -> Page[RecipientView] | StreamingResponse:
    """The campaign's recipients in audience order, by ``state`` (and ``reason``): a page, or every one as CSV."""
    async with engine.connect() as conn:
        row = await _campaign(conn, campaign_id, principal.tenant_id)
    r = campaign_recipients.c
    q = select(campaign_recipients).where(r.campaign_id == row.id, r.tenant_id == principal.tenant_id)
    if state is not None:
        q = q.where(r.state == state.value)
    if reason is not None:
        q = q.where(r.reason == reason)
    if format == "csv":
        return StreamingResponse(_export(engine, q), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="campaign-{row.id}-recipients.csv"'})
    after = _cursor(cursor)
    async with engine.connect() as conn:
        rows = list(await conn.execute(q.where(r.seq > after).order_by(r.seq, r.contact).limit(limit + 1)))
    shown = rows[:limit]
    nxt = base64.urlsafe_b64encode(str(shown[-1].seq).encode()).decode() if len(rows) > limit else None
    return Page(items=[_recipient(x) for x in shown], next_cursor=nxt)


def _cursor(cursor: str | None) -> int:
    if cursor is None:
        return -1
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'cursor' is not a cursor this API gave") from exc


def _recipient(row: Row[Any]) -> RecipientView:
    return RecipientView.model_validate(row, from_attributes=True)


EXPORT_COLUMNS = list(RecipientView.model_fields)


async def _export(engine: AsyncEngine, q: Any) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    after = -1
    while True:
        async with engine.connect() as conn:
            rows = list(await conn.execute(q.where(campaign_recipients.c.seq > after)
                                           .order_by(campaign_recipients.c.seq).limit(EXPORT_PAGE)))
        for row in rows:
            view = _recipient(row).model_dump()
            writer.writerow(["" if view[c] is None else view[c] for c in EXPORT_COLUMNS])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1].seq


# --- preview, estimate, test send ---------------------------------------------------------------------------

async def _sample(conn: AsyncConnection, row: Row[Any], wa_id: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """A contact of the audience (``wa_id``'s, or the first) and its CSV columns."""
    columns: dict[str, str] = {}
    if row.audience.get("kind") == "csv":
        a = campaign_audience_rows.c
        q = select(a.wa_id, a.columns).where(a.campaign_id == row.id, a.problem.is_(None))
        found = (await conn.execute((q.where(a.wa_id == wa_id) if wa_id else q).order_by(a.line).limit(1))).first()
        if found is None:
            raise _unprocessable("contact", "no such contact in the campaign's audience")
        wa_id, columns = found.wa_id, found.columns or {}
    elif wa_id is None:
        ids = await _audience_ids(conn, row, limit=1)
        if not ids:
            raise _unprocessable("contact", "the campaign's audience is empty")
        wa_id = ids[0]
    person = (await conn.execute(select(contacts.c.profile_name, contacts.c.attributes).where(
        contacts.c.tenant_id == row.tenant_id, contacts.c.wa_id == wa_id))).first()
    contact = {"wa_id": wa_id, "profile_name": person.profile_name if person else None,
               "attributes": (person.attributes if person else None) or {}}
    return contact, columns


async def _audience_ids(conn: AsyncConnection, row: Row[Any], *, limit: int) -> list[str]:
    kind = row.audience.get("kind")
    if kind == "csv":
        a = campaign_audience_rows.c
        q = select(a.wa_id).where(a.campaign_id == row.id, a.problem.is_(None)).order_by(a.line)
    elif kind == "retarget":
        audience = RetargetAudience.model_validate(row.audience)
        r = campaign_recipients.c
        q = select(r.wa_id).where(r.campaign_id == audience.campaign_id, r.tenant_id == row.tenant_id,
                                  r.state.in_(audience.wanted()), r.wa_id.is_not(None)).order_by(r.seq)
    else:
        segment = SegmentFilter.model_validate(row.audience.get("filter") or {})
        q = query(row.tenant_id, segment).with_only_columns(contacts.c.wa_id)
    return [str(x) for x in (await conn.execute(q.limit(limit))).scalars()]


async def _message(conn: AsyncConnection, row: Row[Any], contact: dict[str, Any],
                   columns: dict[str, str]) -> tuple[Template, list[dict[str, Any]]]:
    template = await campaign_template(conn, row.tenant_id, row.phone_number_id, row.template_name,
                                       row.template_language)
    if template is None:
        raise _unprocessable("template", "the template is no longer in the registry")
    mapping = {k: VariableSource.model_validate(v) for k, v in (row.variables or {}).items()}
    try:
        components = send_components(template, resolve(mapping, contact, columns))
        validate_send(template, components)
    except (MissingVariable, TemplateSendError) as exc:
        raise _unprocessable("variables", str(exc)) from exc
    return template, components


@router.post("/campaigns/{campaign_id}/preview", responses={**NOT_FOUND, 200: json_example({
    "contact": "15551234567", "components": [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}],
    "text": "Hi Maria, our December sale starts today: 20% off everything."})})
async def preview(campaign_id: CampaignId, body: PreviewRequest, principal: TenantDep,
                  engine: EngineDep) -> dict[str, Any]:
    """The message as one contact of the audience would read it."""
    async with engine.connect() as conn:
        row = await _campaign(conn, campaign_id, principal.tenant_id)
        contact, columns = await _sample(conn, row, body.contact)
        template, components = await _message(conn, row, contact, columns)
    return {"contact": contact["wa_id"], "components": components, "text": render(template, components)}


@router.get("/campaigns/{campaign_id}/estimate", responses={**NOT_FOUND, 200: json_example({
    "currency": "USD", "category": "marketing", "recipients": 1280, "total": 32.0,
    "by_rate": [{"rate": 0.025, "recipients": 1280}]})})
async def cost_estimate(campaign_id: CampaignId, principal: TenantDep, engine: EngineDep,
                        settings: SettingsDep) -> dict[str, Any]:
    """What the campaign would cost: Σ rate(category, recipient's country) over its audience."""
    async with engine.connect() as conn:
        row = await _campaign(conn, campaign_id, principal.tenant_id)
        ids = await _audience_ids(conn, row, limit=MAX_ESTIMATE)
    return estimate(parse_rates(settings.campaign_rates), row.template_category, ids)


@router.post("/campaigns/{campaign_id}/test", status_code=status.HTTP_202_ACCEPTED, responses={
    **NOT_FOUND, 202: json_example({"messages": [{"to": "15551234567",
                                                  "message_id": "0b9f6c1e-5d4a-4c3b-8a2f-7e6d5c4b3a21"}]}, "queued")})
async def test_send(campaign_id: CampaignId, body: TestSend, principal: AdminDep, engine: EngineDep,
                    producer: ProducerDep, settings: SettingsDep) -> dict[str, Any]:
    """Send the campaign's message to the given numbers now, as ordinary messages (not counted in the funnel)."""
    numbers = []
    for i, raw in enumerate(body.to):
        try:
            numbers.append(wa_id_of(normalise(raw)))
        except InvalidNumber as exc:
            raise _unprocessable(f"to.{i}", str(exc)) from exc
    sent = []
    async with engine.connect() as conn:
        row = await _campaign(conn, campaign_id, principal.tenant_id)
        for wa_id in numbers:
            contact, _ = await _sample(conn, row, wa_id) if row.audience.get("kind") != "csv" else (
                {"wa_id": wa_id, "attributes": {}}, {})
            template, components = await _message(conn, row, contact, {})
            message: dict[str, Any] = {"type": "template", "template": {
                "name": template.name, "language": {"code": template.language},
                **({"components": components} if components else {})}}
            command = send_command(principal, phone_number_id=row.phone_number_id, to=wa_id, message=message,
                                   idempotency_key=None)
            accepted = await queue_send(command, None, engine=engine, producer=producer, settings=settings)
            sent.append({"to": wa_id, "message_id": accepted.id})
    return {"messages": sent}


# --- launch, pause, resume, cancel --------------------------------------------------------------------------

async def _command(engine: EngineDep, redis: Any, producer: Any, settings: Any, campaign_id: uuid.UUID,
                   tenant: str, command: str) -> CampaignView:
    """Apply ``command``; the state is committed (and in Redis) before the job that acts on it is published, so
    the expander reads the new state; a job that cannot be published puts the state back (503)."""
    async with engine.begin() as conn:
        row = (await conn.execute(select(campaigns).where(
            campaigns.c.id == str(campaign_id), campaigns.c.tenant_id == tenant).with_for_update())).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "campaign not found")
        if command == "launch" and row.send_at is not None and row.send_at > datetime.now(UTC):
            command = "schedule"
        try:
            target = transition(row.state, command)
        except TransitionError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        columns: dict[str, Any] = {}
        if command == "launch":
            columns["launched_at"] = datetime.now(UTC)
        if target is CampaignState.CANCELLED:
            columns["finished_at"] = datetime.now(UTC)
        await store.set_state(conn, redis, row.id, target, **columns)
    if command in ("launch", "resume"):
        job = CampaignJob(event_id=f"{row.id}:{command}:{uuid.uuid4()}", campaign_id=row.id, tenant_id=tenant,
                          action="expand" if command == "launch" else "requeue")
        try:
            await producer.send(CAMPAIGNS_COMMANDS.full_name(settings.topic_prefix), job.encode(), row.id.encode())
        except DeliveryError as exc:
            async with engine.begin() as conn:
                await store.set_state(conn, redis, row.id, CampaignState(row.state), reason=row.state_reason,
                                      only_from=frozenset({target}))
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the campaign could not be started; retry",
                                headers={"Retry-After": "1"}) from exc
    async with engine.connect() as conn:
        updated = await store.load(conn, row.id, tenant)
    assert updated is not None
    return _view(updated)


@router.post("/campaigns/{campaign_id}/launch", responses=NOT_FOUND)
async def launch(campaign_id: CampaignId, principal: AdminDep, engine: EngineDep, redis: RedisDep,
                 producer: ProducerDep, settings: SettingsDep) -> CampaignView:
    """Start sending now, or at the schedule's ``send_at`` (then the campaign is ``scheduled``)."""
    return await _command(engine, redis, producer, settings, campaign_id, principal.tenant_id, "launch")


@router.post("/campaigns/{campaign_id}/pause", responses=NOT_FOUND)
async def pause(campaign_id: CampaignId, principal: AdminDep, engine: EngineDep, redis: RedisDep,
                producer: ProducerDep, settings: SettingsDep) -> CampaignView:
    """Stop sending at once (calls already on the wire finish); resume continues where it stopped."""
    return await _command(engine, redis, producer, settings, campaign_id, principal.tenant_id, "pause")


@router.post("/campaigns/{campaign_id}/resume", responses=NOT_FOUND)
async def resume(campaign_id: CampaignId, principal: AdminDep, engine: EngineDep, redis: RedisDep,
                 producer: ProducerDep, settings: SettingsDep) -> CampaignView:
    """Continue a paused campaign with the recipients not yet sent (nobody is sent twice)."""
    return await _command(engine, redis, producer, settings, campaign_id, principal.tenant_id, "resume")


@router.post("/campaigns/{campaign_id}/cancel", responses=NOT_FOUND)
async def cancel(campaign_id: CampaignId, principal: AdminDep, engine: EngineDep, redis: RedisDep,
                 producer: ProducerDep, settings: SettingsDep) -> CampaignView:
    """Stop for good: nothing more of this campaign reaches Meta."""
    return await _command(engine, redis, producer, settings, campaign_id, principal.tenant_id, "cancel")
