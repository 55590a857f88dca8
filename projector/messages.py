"""Messages and their statuses → ``messages`` / ``message_statuses``, the same rows whatever the arrival order.

Each input fills only the columns it owns, with an upsert that leaves the others alone:

- the queued record (``MessageQueued``): type, text, payload, sent_at, requested_by, created_at;
- the send result (``OutboundResult``): ``result`` (the verdict), attempts, ambiguous;
- an inbound message: its row's direction, type, text, payload, sent_at;
- a status: its entry in ``message_statuses`` (one per wamid and status; the earliest wins a tie).

An outbound message is the row with its message id. Meta's statuses name a wamid (and carry our
idempotency key in ``biz_opaque_callback_data``) and may come before the result that tells which
message that wamid is: they then wait in a row of their own, which the message adopts. What no
input owns (the message's wamid, status and error, its statuses' ``applied``) is derived again from
the facts after they are written (``projector.settle``).

A batch is written a kind of fact at a time, one statement each (``db.bulk``): a kind's inputs about
one row are first reduced to what a sequence of their upserts would leave (the last queued record, the
earliest result and status, the latest profile name), then every message the batch touched is settled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from contacts.adoption import adopt_wa_id
from db.bulk import columns, json_text, reduce, rows_insert
from projector.settle import KNOWN_STATUSES, WAMID_ROWS, settle, wamid_rows
from schemas.events import InboundMessage, StatusUpdate
from schemas.outbound import MessageQueued, OutboundResult

# Every statement is built once, here: a batch's rows are bound as arrays (see db.bulk).
_SET = ", ".join

_INBOUND_COLUMNS = (("tenant_id", "uuid"), ("wamid", "text"), ("conversation_key", "text"), ("direction", "text"),
                    ("type", "text"), ("text", "text"), ("payload", "jsonb"), ("sent_at", "timestamptz"))
_INBOUND = rows_insert("messages", _INBOUND_COLUMNS, (
    "ON CONFLICT ON CONSTRAINT uq_messages_tenant_wamid DO UPDATE SET "
    + _SET(f"{k} = excluded.{k}" for k, _ in _INBOUND_COLUMNS[2:])
    + " WHERE messages.message_id IS NULL RETURNING messages.id, messages.wamid, CAST(messages.tenant_id AS text)"))
_QUEUED_COLUMNS = (("tenant_id", "uuid"), ("message_id", "text"), ("idempotency_key", "text"),
                   ("conversation_key", "text"), ("direction", "text"), ("type", "text"), ("text", "text"),
                   ("payload", "jsonb"), ("sent_at", "timestamptz"), ("requested_by", "text"),
                   ("created_at", "timestamptz"))
# A new row is queued as it is written (``projector.settle`` would derive just that); an existing one keeps its
# status, which settling derives again.
_QUEUED_INSERTED = (*_QUEUED_COLUMNS, ("status", "text"), ("status_at", "timestamptz"))
_QUEUED = rows_insert("messages", _QUEUED_INSERTED, (
    "ON CONFLICT ON CONSTRAINT uq_messages_tenant_message_id DO UPDATE SET "
    + _SET(f"{k} = excluded.{k}" for k, _ in _QUEUED_COLUMNS[2:])))
_RESULT_COLUMNS = (("tenant_id", "uuid"), ("message_id", "text"), ("idempotency_key", "text"),
                   ("conversation_key", "text"), ("direction", "text"), ("result", "jsonb"), ("attempts", "integer"),
                   ("ambiguous", "boolean"))
_RESULT = rows_insert("messages", _RESULT_COLUMNS, (  # of two results for one message (a replay), the earlier stands
    "ON CONFLICT ON CONSTRAINT uq_messages_tenant_message_id DO UPDATE SET "
    + _SET(f"{k} = excluded.{k}" for k, _ in _RESULT_COLUMNS[2:])
    + " WHERE messages.result IS NULL OR CAST(excluded.result ->> 'completed_at' AS timestamptz)"
      " < CAST(messages.result ->> 'completed_at' AS timestamptz)"))
_STATUS_COLUMNS = (("tenant_id", "uuid"), ("wamid", "text"), ("status", "text"), ("applied", "boolean"),
                   ("status_at", "timestamptz"), ("error_code", "integer"), ("error_title", "text"),
                   ("error_details", "text"), ("payload", "jsonb"))
_STATUS = rows_insert("message_statuses", _STATUS_COLUMNS, (
    "ON CONFLICT ON CONSTRAINT uq_statuses_tenant_wamid_status DO UPDATE SET "
    + _SET(f"{k} = excluded.{k}" for k, _ in _STATUS_COLUMNS[4:])
    + " WHERE excluded.status_at < message_statuses.status_at"))
# The rows holding wamids: (tenant, wamid) → the row's message id and idempotency key.
_HOLDERS = text(
    "SELECT r.tenant_id AS tenant, m.wamid, m.message_id, m.idempotency_key FROM messages m "
    "JOIN unnest(CAST(:tenants AS text[]), CAST(:wamids AS text[])) AS r(tenant_id, wamid) "
    "ON m.tenant_id = CAST(r.tenant_id AS uuid) AND m.wamid = r.wamid")

# A contact's profile name is the one of its latest message (by Meta's timestamp, then name); its number,
# BSUID and username are filled when a message brings them.
_NEWER_NAME = ("(excluded.profile_name IS NOT NULL AND (contacts.profile_name_at IS NULL OR "
               "(contacts.profile_name_at, contacts.profile_name) "
               "< (excluded.profile_name_at, excluded.profile_name)))")
_PROFILE_COLUMNS = (("tenant_id", "uuid"), ("wa_id", "text"), ("profile_name", "text"),
                    ("profile_name_at", "timestamptz"), ("phone", "text"), ("user_id", "text"), ("username", "text"))
_PROFILES = rows_insert("contacts", _PROFILE_COLUMNS, (
    f"ON CONFLICT ON CONSTRAINT uq_contacts_tenant_wa_id DO UPDATE SET "
    f"profile_name = CASE WHEN {_NEWER_NAME} THEN excluded.profile_name ELSE contacts.profile_name END, "
    f"profile_name_at = CASE WHEN {_NEWER_NAME} THEN excluded.profile_name_at ELSE contacts.profile_name_at END, "
    + _SET(f"{k} = coalesce(excluded.{k}, contacts.{k})" for k in ("phone", "user_id", "username"))
    + f", updated_at = now() WHERE {_NEWER_NAME} OR "
    + " OR ".join(f"excluded.{k} IS DISTINCT FROM contacts.{k}" for k in ("phone", "user_id", "username"))))
# A conversation exists once a message names it; a message's time moves its activity forward, never back.
_TOUCH_COLUMNS = (("key", "text"), ("tenant_id", "uuid"), ("phone_number_id", "text"), ("wa_id", "text"),
                  ("last_message_at", "timestamptz"), ("last_inbound_at", "timestamptz"))
_TOUCH = rows_insert("conversations", _TOUCH_COLUMNS, (
    "ON CONFLICT (key) DO UPDATE SET "
    "last_message_at = greatest(conversations.last_message_at, excluded.last_message_at), "
    "last_inbound_at = greatest(conversations.last_inbound_at, excluded.last_inbound_at) "
    "WHERE conversations.tenant_id = excluded.tenant_id AND excluded.last_message_at IS NOT NULL"))


@dataclass(frozen=True)
class _Touch:
    """A conversation a message names, and the time it moves its activity to (None: none)."""

    key: str
    tenant: str
    phone_number_id: str
    wa_id: str
    at: datetime | None
    inbound_at: datetime | None


def _touch_kept(kept: _Touch, new: _Touch) -> _Touch:
    return _Touch(kept.key, kept.tenant, kept.phone_number_id, kept.wa_id, _latest(kept.at, new.at),
                  _latest(kept.inbound_at, new.inbound_at))


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


async def write_messages(conn: AsyncConnection, inbound: Sequence[InboundMessage], queued: Sequence[MessageQueued],
                         results: Sequence[OutboundResult], statuses: Sequence[StatusUpdate]) -> None:
    """Write a batch's messages, results and statuses (each list in the batch's order), then settle every
    message they are about."""
    touches = [_Touch(e.conversation_key, str(e.tenant_id), e.phone_number_id, e.wa_id, e.timestamp, e.timestamp)
               for e in inbound]
    touches += [_Touch(e.conversation_key, e.tenant_id, e.phone_number_id, e.to, e.created_at, None) for e in queued]
    touches += [_Touch(e.conversation_key, e.tenant_id, e.phone_number_id, e.to, None, None) for e in results]
    if statuses:
        await _write_statuses(conn, statuses)
    inbound_rows = await _write_inbound(conn, inbound) if inbound else []
    if queued:
        await _write_queued(conn, queued)
    if results:
        await _write_results(conn, results)
    touches += await _hold_wamids(conn, statuses)
    await _touch(conn, touches)
    await settle(conn, [(e.tenant_id, e.message_id) for e in (*queued, *results)],
                 [(str(e.tenant_id), e.wamid, e.biz_opaque_callback_data) for e in statuses],
                 [(tenant, row_id, wamid) for row_id, wamid, tenant in inbound_rows])  # statuses may have come first
    for result in results:
        if result.outcome == "accepted":  # Meta named the recipient by another id: the contact takes it
            await adopt_wa_id(conn, result.tenant_id, result.to, result.wa_id)


async def _write_inbound(conn: AsyncConnection, events: Sequence[InboundMessage]) -> list[Any]:
    """Inbound messages and their senders' profiles; the message rows written (an outbound message of ours
    holding the wamid is left alone)."""
    profiles = reduce(events, lambda e: (e.tenant_id, e.wa_id), _profile_kept)
    await conn.execute(_PROFILES, columns([k for k, _ in _PROFILE_COLUMNS], [
        (e.tenant_id, e.wa_id, e.profile_name, e.timestamp if e.profile_name else None, e.phone, e.user_id,
         e.username) for e in profiles.values()]))
    last = reduce(events, lambda e: (e.tenant_id, e.wamid), lambda kept, new: new)
    return list(await conn.execute(_INBOUND, columns([k for k, _ in _INBOUND_COLUMNS], [
        (e.tenant_id, e.wamid, e.conversation_key, "inbound", e.type, e.text, json_text(e.payload), e.timestamp)
        for e in last.values()])))


def _profile_kept(kept: InboundMessage, new: InboundMessage) -> InboundMessage:
    """What a sequence of two profile upserts leaves: the later-named profile, and each of number, BSUID and
    username as the later message brings it, else the earlier."""
    named = kept if new.profile_name is None or (
        kept.profile_name is not None and (kept.timestamp, kept.profile_name) >= (new.timestamp, new.profile_name)) \
        else new
    return named.model_copy(update={k: getattr(kept, k) if getattr(new, k) is None else getattr(new, k)
                                    for k in ("phone", "user_id", "username")})


async def _write_queued(conn: AsyncConnection, events: Sequence[MessageQueued]) -> None:
    last = reduce(events, lambda e: (e.tenant_id, e.message_id), lambda kept, new: new)
    rows = []
    for e in last.values():
        body = e.message.get(e.message_type)
        text_ = body.get("body") if e.message_type == "text" and isinstance(body, dict) else None
        rows.append((e.tenant_id, e.message_id, e.idempotency_key, e.conversation_key, "outbound", e.message_type,
                     text_, json_text(e.message), e.created_at, e.requested_by, e.created_at, "queued", e.created_at))
    await conn.execute(_QUEUED, columns([k for k, _ in _QUEUED_INSERTED], rows))


async def _write_results(conn: AsyncConnection, events: Sequence[OutboundResult]) -> None:
    earliest = reduce(events, lambda e: (e.tenant_id, e.message_id),
                      lambda kept, new: new if new.completed_at < kept.completed_at else kept)
    await conn.execute(_RESULT, columns([k for k, _ in _RESULT_COLUMNS], [
        (e.tenant_id, e.message_id, e.idempotency_key, e.conversation_key, "outbound", json_text({
            "outcome": e.outcome, "wamid": e.wamid, "error_code": e.error_code, "error_title": e.error_title,
            "error_details": e.error_details, "ambiguous": e.ambiguous, "completed_at": e.completed_at.isoformat()}),
         e.attempts, e.ambiguous) for e in earliest.values()]))


async def _write_statuses(conn: AsyncConnection, events: Sequence[StatusUpdate]) -> None:
    earliest = reduce(events, lambda e: (e.tenant_id, e.wamid, e.status),
                      lambda kept, new: new if new.timestamp < kept.timestamp else kept)
    await conn.execute(_STATUS, columns([k for k, _ in _STATUS_COLUMNS], [
        (e.tenant_id, e.wamid, e.status, False, e.timestamp, e.error_code, e.error_title, e.error_details,
         json_text(e.payload)) for e in earliest.values()]))


async def _hold_wamids(conn: AsyncConnection, events: Sequence[StatusUpdate]) -> list[_Touch]:
    """A wamid with a status that counts gets a row of its own until our message adopts it, with the first
    idempotency key its statuses carry; returns the conversations of the wamids that had no row."""
    counting = [e for e in events if e.status in KNOWN_STATUSES]
    if not counting:
        return []
    first = reduce(counting, lambda e: (str(e.tenant_id), e.wamid),
                   lambda kept, new: kept if kept.biz_opaque_callback_data or not new.biz_opaque_callback_data
                   else kept.model_copy(update={"biz_opaque_callback_data": new.biz_opaque_callback_data}))
    held = {(r.tenant, r.wamid): r for r in await conn.execute(_HOLDERS, {
        "tenants": [t for t, _ in first], "wamids": [w for _, w in first]})}
    touches: list[_Touch] = []
    rows = []
    for (tenant, wamid), e in first.items():
        row, key = held.get((tenant, wamid)), e.biz_opaque_callback_data
        if row is None:
            touches.append(_Touch(e.conversation_key, tenant, e.phone_number_id, e.recipient_id, None, None))
        if row is None or (row.message_id is None and row.idempotency_key is None and key is not None):
            rows.append((tenant, wamid, key, e.conversation_key))
    if rows:
        await conn.execute(WAMID_ROWS, wamid_rows(rows))
    return touches


async def _touch(conn: AsyncConnection, touches: Sequence[_Touch]) -> None:
    """Make sure the conversations exist and move their activity forward (a batch names each conversation with
    one tenant: ``projector.writer``)."""
    if touches:
        folded = reduce(touches, lambda t: t.key, _touch_kept)
        await conn.execute(_TOUCH, columns([k for k, _ in _TOUCH_COLUMNS], [
            (t.key, t.tenant, t.phone_number_id, t.wa_id, t.at, t.inbound_at) for t in folded.values()]))
