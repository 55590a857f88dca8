"""The template registry (``message_templates``, ``template_syncs``) from requests, results and webhooks.

Every fact carries the time Meta stated it (a webhook's entry time, a sync's or an answer's fetch time, a
request's time) in ``status_at``: a row takes a status only from a fact at least as recent as the one it
has, so a late sync page never undoes a webhook's PAUSED, whatever order the topics deliver. Quality
scores and categories are applied as they come (Meta sends each change once). Rows are keyed by
``template_id(tenant, WABA, name, language)``. ``unknown_template`` tells the projector a webhook named a
template the registry does not hold (created in WhatsApp Manager), or an edit: it asks the dispatcher for a sync.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, not_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import message_templates, template_syncs
from schemas.events import AccountEvent
from schemas.meta_enums import ChangeField
from schemas.templates import TemplateRequest, TemplateResult
from templates.model import RECREATABLE
from templates.registry import template_id

TEMPLATE_FIELDS = frozenset({ChangeField.MESSAGE_TEMPLATE_STATUS_UPDATE, ChangeField.MESSAGE_TEMPLATE_QUALITY_UPDATE,
                             ChangeField.TEMPLATE_CATEGORY_UPDATE, ChangeField.MESSAGE_TEMPLATE_COMPONENTS_UPDATE})
# message_template_status_update events → the registry's status (FLAGGED and REINSTATED leave it sendable).
EVENT_STATUS = {"REINSTATED": "APPROVED", "FLAGGED": "APPROVED", "UNPAUSED": "APPROVED"}


def _listed(result: TemplateResult, item: dict[str, Any]) -> dict[str, Any]:
    """A registry row from one template of Meta's listing."""
    quality = item.get("quality_score")
    reason = item.get("rejected_reason")
    return dict(
        id=template_id(result.tenant_id, result.waba_id, str(item["name"]), str(item.get("language", ""))),
        tenant_id=result.tenant_id, waba_id=result.waba_id, name=str(item["name"]),
        language=str(item.get("language", "")), meta_id=str(item["id"]) if item.get("id") is not None else None,
        category=str(item.get("category") or "UTILITY").upper(), status=str(item.get("status") or "PENDING").upper(),
        status_reason=str(reason) if reason and reason != "NONE" else None,
        quality=str(quality.get("score")) if isinstance(quality, dict) and quality.get("score") else None,
        parameter_format=str(item.get("parameter_format") or "positional").lower(),
        components=[c for c in item.get("components") or [] if isinstance(c, dict)],
        error_code=None, error_message=None, status_at=result.fetched_at)


async def _upsert(conn: AsyncConnection, row: dict[str, Any], *, keep: tuple[str, ...] = ()) -> None:
    """Insert ``row``, or update the stored one when ``row`` is at least as recent (``keep``: columns an update
    leaves alone)."""
    new = insert(message_templates).values(**row)
    columns = [k for k in row if k not in ("id", "tenant_id", "waba_id", "name", "language", *keep)]
    await conn.execute(new.on_conflict_do_update(
        index_elements=[message_templates.c.id],
        set_={**{k: new.excluded[k] for k in columns}, "updated_at": func.now()},
        where=(message_templates.c.tenant_id == new.excluded.tenant_id)
        & (message_templates.c.status_at <= new.excluded.status_at)))


async def write_template_request(conn: AsyncConnection, event: TemplateRequest) -> None:
    """A creation on its way to Meta: ``SUBMITTING`` (over a rejected, failed or deleted one only)."""
    if event.action != "create" or not event.template:
        return
    body = event.template
    name, language = str(body.get("name")), str(body.get("language"))
    row = dict(id=template_id(event.tenant_id, event.waba_id, name, language), tenant_id=event.tenant_id,
               waba_id=event.waba_id, name=name, language=language, category=str(body.get("category")),
               status="SUBMITTING", parameter_format=str(body.get("parameter_format") or "positional"),
               components=body.get("components") or [], request_id=event.request_id, status_reason=None,
               error_code=None, error_message=None, status_at=event.requested_at)
    new = insert(message_templates).values(**row)
    await conn.execute(new.on_conflict_do_update(
        index_elements=[message_templates.c.id],
        set_={**{k: new.excluded[k] for k in row if k not in ("id", "tenant_id")}, "meta_id": None,
              "quality": None, "updated_at": func.now()},
        where=(message_templates.c.tenant_id == new.excluded.tenant_id)
        & (message_templates.c.status_at < new.excluded.status_at)
        & message_templates.c.status.in_(RECREATABLE)))


async def write_template_result(conn: AsyncConnection, result: TemplateResult) -> None:
    if result.outcome == "page":
        for item in result.templates:
            if item.get("name"):
                await _upsert(conn, _listed(result, item), keep=("request_id",))
    elif result.outcome == "synced":
        await _synced(conn, result)
    elif result.outcome == "created" and result.name and result.language:
        body = result.template or {}
        await _upsert(conn, dict(
            id=template_id(result.tenant_id, result.waba_id, result.name, result.language),
            tenant_id=result.tenant_id, waba_id=result.waba_id, name=result.name, language=result.language,
            meta_id=result.meta_id, category=(result.category or str(body.get("category"))).upper(),
            status=(result.status or "PENDING").upper(), request_id=result.request_id,
            parameter_format=str(body.get("parameter_format") or "positional"),
            components=body.get("components") or [], error_code=None, error_message=None,
            status_at=result.fetched_at))
    elif result.outcome == "deleted" and result.name:
        await conn.execute(update(message_templates).where(
            message_templates.c.tenant_id == result.tenant_id, message_templates.c.waba_id == result.waba_id,
            message_templates.c.name == result.name, message_templates.c.status_at <= result.fetched_at,
        ).values(status="DELETED", status_at=result.fetched_at, updated_at=func.now()))
    elif result.outcome == "failed":
        await _failed(conn, result)


async def _synced(conn: AsyncConnection, result: TemplateResult) -> None:
    """Meta listed ``seen``: what the registry holds beyond it (and older than the listing) was deleted."""
    scope = and_(message_templates.c.tenant_id == result.tenant_id, message_templates.c.waba_id == result.waba_id,
                 message_templates.c.status_at < result.fetched_at, message_templates.c.status != "DELETED",
                 message_templates.c.meta_id.is_not(None))
    if result.seen:
        scope = and_(scope, not_(tuple_(message_templates.c.name, message_templates.c.language).in_(
            [tuple(pair) for pair in result.seen])))
    await conn.execute(update(message_templates).where(scope).values(
        status="DELETED", status_reason="not listed by Meta", status_at=result.fetched_at, updated_at=func.now()))
    values = dict(request_id=result.request_id, status="done", templates=len(result.seen), error_code=None,
                  error_message=None, synced_at=result.fetched_at, finished_at=result.fetched_at)
    new = insert(template_syncs).values(tenant_id=result.tenant_id, waba_id=result.waba_id, **values)
    await conn.execute(new.on_conflict_do_update(
        index_elements=[template_syncs.c.tenant_id, template_syncs.c.waba_id],
        set_={k: new.excluded[k] for k in values}, where=template_syncs.c.finished_at <= new.excluded.finished_at))


async def _failed(conn: AsyncConnection, result: TemplateResult) -> None:
    error = {"error_code": result.error_code, "error_message": result.error_message}
    if result.action == "sync":
        new = insert(template_syncs).values(tenant_id=result.tenant_id, waba_id=result.waba_id,
                                            request_id=result.request_id, status="failed",
                                            finished_at=result.fetched_at, **error)
        await conn.execute(new.on_conflict_do_update(
            index_elements=[template_syncs.c.tenant_id, template_syncs.c.waba_id],
            set_={"request_id": new.excluded.request_id, "status": "failed", "finished_at": new.excluded.finished_at,
                  "error_code": new.excluded.error_code, "error_message": new.excluded.error_message},
            where=template_syncs.c.finished_at <= new.excluded.finished_at))
        return
    scope = [message_templates.c.tenant_id == result.tenant_id, message_templates.c.waba_id == result.waba_id]
    if result.action == "create":  # the submitted row of this request becomes FAILED, with Meta's reason
        await conn.execute(update(message_templates).where(
            *scope, message_templates.c.request_id == result.request_id, message_templates.c.status == "SUBMITTING",
        ).values(status="FAILED", status_at=result.fetched_at, updated_at=func.now(), **error))
    elif result.name:  # a refused deletion: the rows stay as they are, with the reason
        await conn.execute(update(message_templates).where(*scope, message_templates.c.name == result.name)
                           .values(updated_at=func.now(), **error))


def _event_time(event: AccountEvent) -> datetime:
    """When the webhook's fact happened: Meta's whole-second ``entry.time`` (else the arrival)."""
    entry_time = event.payload.get("entry_time")
    if isinstance(entry_time, int | float) and entry_time > 0:
        return datetime.fromtimestamp(entry_time, UTC)
    return event.received_at


class SyncNeed(NamedTuple):
    """A registry to read again from Meta: ``cause`` is "" when a webhook named a template the registry lacks (such
    needs are folded into one sync a minute), else the id of the edit that asked for it."""

    tenant_id: str
    waba_id: str
    cause: str


def sync_need(event: AccountEvent) -> SyncNeed:
    """What ``event``, a template webhook ``write_template_event`` could not apply, asks for. An edit gets a sync of
    its own: folded into one made earlier in the same minute, it would be read from Meta before it was made."""
    edited = event.field == ChangeField.MESSAGE_TEMPLATE_COMPONENTS_UPDATE
    return SyncNeed(str(event.tenant_id), event.waba_id, event.event_id if edited else "")


async def write_template_event(conn: AsyncConnection, event: AccountEvent) -> bool:
    """Apply a template webhook to the registry; False when the registry needs a sync: the webhook names a
    template it lacks, or says a template was edited (``message_template_components_update`` carries the new
    texts but not every component's shape, so the template is read again from Meta)."""
    value = event.payload.get("value")
    if event.tenant_id is None or not isinstance(value, dict) or not value.get("message_template_name"):
        return True
    if event.field == ChangeField.MESSAGE_TEMPLATE_COMPONENTS_UPDATE:
        return False
    name, language = str(value["message_template_name"]), str(value.get("message_template_language") or "")
    key = template_id(event.tenant_id, event.waba_id, name, language)
    where = [message_templates.c.id == key, message_templates.c.tenant_id == event.tenant_id]
    changes: dict[str, Any]
    if event.field == ChangeField.MESSAGE_TEMPLATE_STATUS_UPDATE:
        name_of_event = str(value.get("event") or "").upper()
        rejection = value.get("rejection_info")
        other = value.get("other_info")
        reason = next((str(r) for r in (
            value.get("reason"), rejection.get("reason") if isinstance(rejection, dict) else None,
            other.get("title") if isinstance(other, dict) else None) if r and r != "NONE"), None)
        at = _event_time(event)
        changes = {"status": EVENT_STATUS.get(name_of_event, name_of_event), "status_reason": reason, "status_at": at}
        if value.get("message_template_category"):
            changes["category"] = str(value["message_template_category"]).upper()
        if value.get("message_template_id") is not None:
            changes["meta_id"] = str(value["message_template_id"])
        where.append(message_templates.c.status_at <= at)
    elif event.field == ChangeField.MESSAGE_TEMPLATE_QUALITY_UPDATE:
        changes = {"quality": str(value.get("new_quality_score") or "UNKNOWN").upper()}
    else:
        changes = {"category": str(value.get("new_category") or "").upper() or message_templates.c.category,
                   "previous_category": str(value["previous_category"]).upper() if value.get("previous_category")
                   else message_templates.c.category}
    updated = await conn.execute(update(message_templates).where(*where).values(**changes, updated_at=func.now())
                                 .returning(message_templates.c.id))
    if updated.first() is not None:
        return True
    held = (await conn.execute(select(message_templates.c.status_at).where(*where[:2]))).first()
    if held is None:
        return False
    # A status from within the second of a sync's listing (dated to the microsecond) cannot be ordered against
    # it: neither wins, and the registry is read again from Meta.
    return not (event.field == ChangeField.MESSAGE_TEMPLATE_STATUS_UPDATE
                and held.status_at is not None and held.status_at < _event_time(event) + timedelta(seconds=1))
