"""Messages and their statuses → ``messages`` / ``message_statuses``, the same rows whatever the arrival order.

Each input fills only the columns it owns, with an upsert that leaves the others alone:

- the queued record (``MessageQueued``): type, text, payload, sent_at, requested_by, created_at;
- the send result (``OutboundResult``): ``result`` (the verdict), attempts, ambiguous;
- an inbound message: its row's direction, type, text, payload, sent_at;
- a status: its entry in ``message_statuses`` (one per wamid and status; the earliest wins a tie).

An outbound message is the row with its message id. Meta's statuses name a wamid (and carry our
idempotency key in ``biz_opaque_callback_data``) and may come before the result that tells which
message that wamid is: they then wait in a row of their own, which the message adopts. After every
input ``_settle`` derives what no input owns: the message's wamid (the result's, else the least
wamid reported with its key, see ``projector.merge.message_wamid``), its status, status_at and
error, and each status's ``applied`` flag (``projector.merge.merge``). Rows of one conversation are
only written under its lock (``projector.writer``), so these read-then-write steps do not race.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, case, cast, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import BindParameter

from contacts.adoption import adopt_wa_id
from db.tables import contacts, conversations, message_statuses, messages
from projector.merge import Fact, merge, message_wamid, verdict_fact
from schemas.events import InboundMessage, StatusUpdate
from schemas.outbound import MessageQueued, OutboundResult
from schemas.status_rank import FAILED, RANK

log = logging.getLogger(__name__)

# A status that can become a message's status gets a row even before the message is known.
KNOWN_STATUSES = frozenset({*RANK, FAILED})

# Every statement is built once, here: each write only binds its values (the columns of an INSERT are
# the keys of its parameters), so SQLAlchemy compiles each statement once and then takes it from its cache.
_INBOUND_OWNED = ("conversation_key", "direction", "type", "text", "payload", "sent_at")
_QUEUED_OWNED = ("idempotency_key", "conversation_key", "direction", "type", "text", "payload", "sent_at",
                 "requested_by", "created_at")
_RESULT_OWNED = ("idempotency_key", "conversation_key", "direction", "result", "attempts", "ambiguous")
_STATUS_OWNED = ("status_at", "error_code", "error_title", "error_details", "payload")

_message_insert = insert(messages)
_new = _message_insert.excluded
_INBOUND = _message_insert.on_conflict_do_update(
    constraint="uq_messages_tenant_wamid", set_={k: _new[k] for k in _INBOUND_OWNED},
    where=messages.c.message_id.is_(None)).returning(messages.c.id)
_QUEUED = _message_insert.on_conflict_do_update(
    constraint="uq_messages_tenant_message_id", set_={k: _new[k] for k in _QUEUED_OWNED})
_RESULT = _message_insert.on_conflict_do_update(
    constraint="uq_messages_tenant_message_id", set_={k: _new[k] for k in _RESULT_OWNED},
    where=messages.c.result.is_(None)
    | (cast(_new.result["completed_at"].astext, DateTime(timezone=True))
       < cast(messages.c.result["completed_at"].astext, DateTime(timezone=True))))
_WAMID_ROW = _message_insert.on_conflict_do_update(
    constraint="uq_messages_tenant_wamid", where=messages.c.message_id.is_(None),
    set_={"idempotency_key": func.coalesce(messages.c.idempotency_key, _new.idempotency_key)})

_status_insert = insert(message_statuses)
_STATUS = _status_insert.on_conflict_do_update(
    constraint="uq_statuses_tenant_wamid_status", set_={k: _status_insert.excluded[k] for k in _STATUS_OWNED},
    where=_status_insert.excluded.status_at < message_statuses.c.status_at)


def _profile_statement() -> Any:
    stmt = insert(contacts)
    new = stmt.excluded
    newer = new.profile_name.is_not(None) & (
        contacts.c.profile_name_at.is_(None)
        | (tuple_(contacts.c.profile_name_at, contacts.c.profile_name) < tuple_(new.profile_name_at, new.profile_name)))
    named = {"profile_name": case((newer, new.profile_name), else_=contacts.c.profile_name),
             "profile_name_at": case((newer, new.profile_name_at), else_=contacts.c.profile_name_at)}
    return stmt.on_conflict_do_update(
        constraint="uq_contacts_tenant_wa_id",
        where=newer | new.phone.is_distinct_from(contacts.c.phone) | new.user_id.is_distinct_from(contacts.c.user_id)
        | new.username.is_distinct_from(contacts.c.username),
        set_={**named, "phone": func.coalesce(new.phone, contacts.c.phone),
              "user_id": func.coalesce(new.user_id, contacts.c.user_id),
              "username": func.coalesce(new.username, contacts.c.username), "updated_at": func.now()})


_PROFILE = _profile_statement()

_conversation_insert = insert(conversations)
_cnew = _conversation_insert.excluded
_TOUCH = _conversation_insert.on_conflict_do_nothing(index_elements=["key"])
_TOUCH_AT = _conversation_insert.on_conflict_do_update(
    index_elements=["key"],
    set_={"last_message_at": func.greatest(conversations.c.last_message_at, _cnew.last_message_at)},
    where=conversations.c.tenant_id == _cnew.tenant_id)
_TOUCH_INBOUND = _conversation_insert.on_conflict_do_update(
    index_elements=["key"],
    set_={"last_message_at": func.greatest(conversations.c.last_message_at, _cnew.last_message_at),
          "last_inbound_at": func.greatest(conversations.c.last_inbound_at, _cnew.last_inbound_at)},
    where=conversations.c.tenant_id == _cnew.tenant_id)

_TENANT: BindParameter[str] = bindparam("tenant")
_WAMID: BindParameter[str] = bindparam("wamid_of")
_ours = select(messages.c.id, messages.c.wamid, messages.c.idempotency_key, messages.c.conversation_key,
               messages.c.result, messages.c.sent_at).where(messages.c.tenant_id == _TENANT,
                                                             messages.c.message_id.is_not(None))
_OURS_BY_ID = _ours.where(messages.c.message_id == bindparam("message_id_of"))
_OURS_BY_WAMID = _ours.where(messages.c.wamid == _WAMID)
_OURS_BY_KEY = _ours.where(messages.c.idempotency_key == bindparam("key")).order_by(messages.c.message_id).limit(1)
_REPORTED = select(messages.c.wamid).where(
    messages.c.tenant_id == _TENANT, messages.c.idempotency_key == bindparam("key"),
    messages.c.message_id.is_(None), messages.c.direction == "outbound", messages.c.wamid.is_not(None))
_WAMID_HOLDER = select(messages.c.id, messages.c.message_id, messages.c.idempotency_key).where(
    messages.c.tenant_id == _TENANT, messages.c.wamid == _WAMID)
_EARLY_ROW = select(messages.c.id).where(
    messages.c.tenant_id == _TENANT, messages.c.wamid == _WAMID, messages.c.message_id.is_(None))
_DELETE_ROW = delete(messages).where(messages.c.id == bindparam("row_id"))
_UPDATE_ROW = update(messages).where(messages.c.id == bindparam("row_id"))  # SET: the parameters' columns
_COUNTS = select(message_statuses.c.id).where(
    message_statuses.c.tenant_id == _TENANT, message_statuses.c.wamid == _WAMID,
    message_statuses.c.status.in_(sorted(KNOWN_STATUSES))).limit(1)
_HISTORY = select(message_statuses.c.status, message_statuses.c.status_at, message_statuses.c.error_code,
                  message_statuses.c.error_title, message_statuses.c.error_details).where(
    message_statuses.c.tenant_id == _TENANT, message_statuses.c.wamid == _WAMID)
_APPLIED = update(message_statuses).where(
    message_statuses.c.tenant_id == _TENANT, message_statuses.c.wamid == _WAMID).values(
    applied=message_statuses.c.status.in_(bindparam("applied_statuses", expanding=True)))


async def write_inbound(conn: AsyncConnection, event: InboundMessage) -> None:
    tenant = event.tenant_id
    assert tenant is not None
    await _profile(conn, event)
    await touch_conversation(conn, tenant, event.conversation_key, event.phone_number_id, event.wa_id,
                             at=event.timestamp, inbound=True)
    row_id = (await conn.execute(_INBOUND, {
        "tenant_id": tenant, "wamid": event.wamid, "conversation_key": event.conversation_key,
        "direction": "inbound", "type": event.type, "text": event.text, "payload": event.payload,
        "sent_at": event.timestamp})).scalar()
    if row_id is not None:  # its statuses may have come first
        await _derive(conn, tenant, row_id, event.wamid, verdict=None, queued_at=None)


async def _profile(conn: AsyncConnection, event: InboundMessage) -> None:
    """The contact's profile name is the one of its latest message (by Meta's timestamp, then name); its
    number, BSUID and username are filled when a message brings them (and the username follows the latest)."""
    await conn.execute(_PROFILE, {
        "tenant_id": event.tenant_id, "wa_id": event.wa_id, "profile_name": event.profile_name,
        "profile_name_at": event.timestamp if event.profile_name else None, "phone": event.phone,
        "user_id": event.user_id, "username": event.username})


async def touch_conversation(conn: AsyncConnection, tenant: str, key: str, phone_number_id: str, wa_id: str, *,
                             at: datetime | None, inbound: bool = False) -> None:
    """Make sure the conversation exists; a message at ``at`` moves its activity forward, never back."""
    statement = _TOUCH if at is None else _TOUCH_INBOUND if inbound else _TOUCH_AT
    await conn.execute(statement, {"key": key, "tenant_id": tenant, "phone_number_id": phone_number_id,
                                   "wa_id": wa_id, "last_message_at": at, "last_inbound_at": at if inbound else None})


async def write_queued(conn: AsyncConnection, event: MessageQueued) -> None:
    await touch_conversation(conn, event.tenant_id, event.conversation_key, event.phone_number_id, event.to,
                             at=event.created_at)
    body = event.message.get(event.message_type)
    text = body.get("body") if event.message_type == "text" and isinstance(body, dict) else None
    await conn.execute(_QUEUED, {
        "tenant_id": event.tenant_id, "message_id": event.message_id, "idempotency_key": event.idempotency_key,
        "conversation_key": event.conversation_key, "direction": "outbound", "type": event.message_type,
        "text": text, "payload": event.message, "sent_at": event.created_at, "requested_by": event.requested_by,
        "created_at": event.created_at})
    await _settle(conn, event.tenant_id, message_id=event.message_id)


async def write_result(conn: AsyncConnection, result: OutboundResult) -> None:
    """The verdict; of two results for one message (a replay), the earlier one stands."""
    await touch_conversation(conn, result.tenant_id, result.conversation_key, result.phone_number_id, result.to,
                             at=None)
    verdict = {"outcome": result.outcome, "wamid": result.wamid, "error_code": result.error_code,
               "error_title": result.error_title, "error_details": result.error_details,
               "ambiguous": result.ambiguous, "completed_at": result.completed_at.isoformat()}
    await conn.execute(_RESULT, {
        "tenant_id": result.tenant_id, "message_id": result.message_id, "idempotency_key": result.idempotency_key,
        "conversation_key": result.conversation_key, "direction": "outbound", "result": verdict,
        "attempts": result.attempts, "ambiguous": result.ambiguous})
    await _settle(conn, result.tenant_id, message_id=result.message_id)
    if result.outcome == "accepted":  # Meta named the recipient by another id: the contact takes it
        await adopt_wa_id(conn, result.tenant_id, result.to, result.wa_id)


async def write_status(conn: AsyncConnection, event: StatusUpdate) -> None:
    tenant = event.tenant_id
    assert tenant is not None
    await conn.execute(_STATUS, {
        "tenant_id": tenant, "wamid": event.wamid, "status": event.status, "applied": False,
        "status_at": event.timestamp, "error_code": event.error_code, "error_title": event.error_title,
        "error_details": event.error_details, "payload": event.payload})
    key = event.biz_opaque_callback_data
    if event.status in KNOWN_STATUSES:  # a status that counts gives its wamid a row (until our message adopts it)
        row = (await conn.execute(_WAMID_HOLDER, {"tenant": tenant, "wamid_of": event.wamid})).first()
        if row is None:
            await touch_conversation(conn, tenant, event.conversation_key, event.phone_number_id,
                                     event.recipient_id, at=None)
        if row is None or (row.message_id is None and row.idempotency_key is None and key is not None):
            await _wamid_row(conn, tenant, event.wamid, event.conversation_key, key)
    await _settle(conn, tenant, wamid=event.wamid, key=key)


# --- deriving -----------------------------------------------------------------------------------

async def _settle(conn: AsyncConnection, tenant: str, *, message_id: str | None = None, wamid: str | None = None,
                  key: str | None = None) -> None:
    """Give our message its wamid and derived fields, and the rows of other wamids theirs."""
    others = {wamid} if wamid else set()
    main = await _message(conn, tenant, message_id=message_id, wamid=wamid, key=key)
    if main is not None:
        verdict_wamid = main.result.get("wamid") if main.result else None
        reported = {main.wamid} if main.wamid else set()
        if verdict_wamid is None and main.idempotency_key is not None:
            reported |= set((await conn.execute(_REPORTED, {"tenant": tenant,
                                                            "key": main.idempotency_key})).scalars())
        current = message_wamid(verdict_wamid, reported)
        if current != main.wamid and not await _adopt(conn, tenant, main.id, current):
            current = main.wamid
        elif current != main.wamid and main.wamid is not None and await _counts(conn, tenant, main.wamid):
            # A copy it had adopted is not its own after all: it keeps its statuses in a row of its own.
            await _wamid_row(conn, tenant, main.wamid, main.conversation_key, main.idempotency_key)
            others.add(main.wamid)
        others.discard(current)
        await _derive(conn, tenant, main.id, current, verdict=main.result, queued_at=main.sent_at)
    for other in sorted(others):
        row_id = (await conn.execute(_EARLY_ROW, {"tenant": tenant, "wamid_of": other})).scalar()
        if row_id is not None:
            await _derive(conn, tenant, row_id, other, verdict=None, queued_at=None)


async def _message(conn: AsyncConnection, tenant: str, *, message_id: str | None, wamid: str | None,
                   key: str | None) -> Any:
    """Our outbound message these facts are about: by message id, by wamid, else by idempotency key."""
    if message_id is not None:
        return (await conn.execute(_OURS_BY_ID, {"tenant": tenant, "message_id_of": message_id})).first()
    row = (await conn.execute(_OURS_BY_WAMID, {"tenant": tenant, "wamid_of": wamid})).first() if wamid else None
    if row is None and key is not None:
        row = (await conn.execute(_OURS_BY_KEY, {"tenant": tenant, "key": key})).first()
    return row


async def _adopt(conn: AsyncConnection, tenant: str, row_id: int, wamid: str | None) -> bool:
    """Move ``wamid`` to our message (its early row goes); False when another message holds it."""
    if wamid is not None:
        holder = (await conn.execute(_WAMID_HOLDER, {"tenant": tenant, "wamid_of": wamid})).first()
        if holder is not None and holder.message_id is not None:
            log.warning("wamid %s of message row %s already belongs to message %s", wamid, row_id, holder.message_id)
            return False
        if holder is not None:
            await conn.execute(_DELETE_ROW, {"row_id": holder.id})
    await conn.execute(_UPDATE_ROW, {"row_id": row_id, "wamid": wamid})
    return True


async def _counts(conn: AsyncConnection, tenant: str, wamid: str) -> bool:
    """Whether ``wamid`` has a status that can become a message's status."""
    return (await conn.execute(_COUNTS, {"tenant": tenant, "wamid_of": wamid})).first() is not None


async def _wamid_row(conn: AsyncConnection, tenant: str, wamid: str, conversation_key: str, key: str | None) -> None:
    """The row of a wamid that is not (yet) our message's, with the idempotency key its statuses carry."""
    await conn.execute(_WAMID_ROW, {"tenant_id": tenant, "wamid": wamid, "idempotency_key": key,
                                    "conversation_key": conversation_key, "direction": "outbound"})


async def _derive(conn: AsyncConnection, tenant: str, row_id: int, wamid: str | None, *,
                  verdict: dict[str, Any] | None, queued_at: datetime | None) -> None:
    """Status, status_at and error of a row (and its history's ``applied``) from its facts alone."""
    history = (await conn.execute(_HISTORY, {"tenant": tenant, "wamid_of": wamid})).all() if wamid else []
    facts = [Fact(r.status, r.status_at, r.error_code, r.error_title, r.error_details) for r in history]
    if verdict is not None:
        facts.append(verdict_fact(verdict, meta_reported=bool(history)))
    if not facts and queued_at is None:
        return  # nothing to derive from (statuses are never removed, so nothing was derived before either)
    merged = merge(facts)
    status, at = merged.status, merged.at
    if status is None and queued_at is not None:
        status, at = "queued", queued_at
    await conn.execute(_UPDATE_ROW, {"row_id": row_id, "status": status, "status_at": at,
                                     "error_code": merged.error_code, "error_title": merged.error_title,
                                     "error_details": merged.error_details})
    if history:
        await conn.execute(_APPLIED, {"tenant": tenant, "wamid_of": wamid,
                                      "applied_statuses": sorted(merged.applied)})
