"""Write a batch of events into PostgreSQL: the same rows whatever order the topics deliver them in.

The projector reads topics whose partitions are consumed independently, so the inputs about one
message or conversation come in any order, and redelivered. Each input writes only the columns
it owns (an upsert that never sets another input's column, least of all to NULL); what depends
on several inputs is merged by rank or version (a message's status: ``projector.merge``; a
conversation's state: its version; a contact: its latest change) or derived again from the
recorded facts, so a late or repeated input neither loses nor regresses anything. Where a write
reads before it writes (a message and its statuses, a contact, Meta's opt-outs), the transaction first takes the
conversation's (or contact's) advisory lock, all of a batch's in one fixed order.

Messages, statuses and conversation events, nearly all of the traffic, are written a kind at a time, one
statement per kind and batch (``projector.messages.write_messages``,
``projector.conversation_events.write_conversation_events``); the rarer inputs one by one, in the batch's order.
A conversation's row belongs to the first tenant that writes it, so a batch in which two tenants name one
conversation is written one event at a time, in its order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contacts import optout
from contacts.adoption import adopts
from db.tables import account_events
from projector.conversation_events import write_conversation_events
from projector.media import write_media_result
from projector.messages import write_messages
from projector.signups import write_request
from projector.signups import write_result as write_signup_result
from projector.templates import (
    TEMPLATE_FIELDS,
    SyncNeed,
    sync_need,
    write_template_event,
    write_template_request,
    write_template_result,
)
from schemas.conversation import AiOutcome, ContactChanged, ConversationChanged, RuleExecuted
from schemas.events import AccountEvent, Event, InboundMessage, StatusUpdate
from schemas.media import MediaResult
from schemas.meta_enums import ChangeField
from schemas.outbound import MessageQueued, OutboundResult
from schemas.signup import SignupRequest, SignupResult
from schemas.templates import TemplateRequest, TemplateResult

USER_PREFERENCES = ChangeField.USER_PREFERENCES.value

# Transaction-level advisory locks, taken in the order of their keys so two batches never deadlock.
_LOCK = text("SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h "
             "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered")
_ACCOUNT = insert(account_events).on_conflict_do_nothing(index_elements=["event_id"])


async def write_events(conn: AsyncConnection, events: Sequence[Event]) -> set[SyncNeed]:
    """Apply ``events`` inside the caller's transaction (events without a tenant are skipped); returns the
    registries that need a sync (a template webhook named an unknown or edited template: ``sync_need``)."""
    owned = [e for e in events if getattr(e, "tenant_id", None) is not None]
    keys = sorted({key for e in owned for key in _lock_keys(e)})
    if keys:
        await conn.execute(_LOCK, {"keys": keys})
    if not _shares_a_conversation(owned):
        return await _write(conn, owned)
    unknown: set[SyncNeed] = set()
    for event in owned:  # the first tenant to write a conversation's row owns it: in the batch's order
        unknown |= await _write(conn, [event])
    return unknown


def _shares_a_conversation(events: Sequence[Event]) -> bool:
    """Whether two tenants name one conversation (a number that moved tenant, with inputs of both in flight)."""
    tenants: dict[str, str] = {}
    for e in events:
        if isinstance(e, InboundMessage | StatusUpdate | MessageQueued | OutboundResult | ConversationChanged):
            if tenants.setdefault(e.conversation_key, str(e.tenant_id)) != str(e.tenant_id):
                return True
    return False


async def _write(conn: AsyncConnection, owned: Sequence[Event]) -> set[SyncNeed]:
    """Write ``owned``, in which each conversation is named by one tenant, a kind at a time."""
    unknown: set[SyncNeed] = set()
    await write_messages(conn, [e for e in owned if isinstance(e, InboundMessage)],
                         [e for e in owned if isinstance(e, MessageQueued)],
                         [e for e in owned if isinstance(e, OutboundResult)],
                         [e for e in owned if isinstance(e, StatusUpdate)])
    await write_conversation_events(conn, [e for e in owned if isinstance(
        e, ConversationChanged | ContactChanged | RuleExecuted | AiOutcome)])
    for event in owned:
        if isinstance(event, AccountEvent):
            await _account(conn, event)
            if event.field in TEMPLATE_FIELDS and not await write_template_event(conn, event):
                unknown.add(sync_need(event))
        elif isinstance(event, SignupRequest):
            await write_request(conn, event)
        elif isinstance(event, SignupResult):
            await write_signup_result(conn, event)
        elif isinstance(event, TemplateRequest):
            await write_template_request(conn, event)
        elif isinstance(event, TemplateResult):
            await write_template_result(conn, event)
        elif isinstance(event, MediaResult):
            await write_media_result(conn, event)
    return unknown


def _lock_keys(event: Event) -> list[str]:
    """What an event reads before it writes: its conversation's messages, or its contacts."""
    if isinstance(event, OutboundResult) and event.wa_id is not None and adopts(event.to, event.wa_id):
        return [f"{event.tenant_id}\x1f{event.conversation_key}", optout.lock_key(event.tenant_id, event.to),
                optout.lock_key(event.tenant_id, event.wa_id)]  # the contact adopts Meta's id
    if isinstance(event, InboundMessage | StatusUpdate | MessageQueued | OutboundResult):
        return [f"{event.tenant_id}\x1f{event.conversation_key}"]
    if isinstance(event, ContactChanged):
        return [optout.lock_key(event.tenant_id, event.wa_id)]
    if isinstance(event, AccountEvent) and event.field == USER_PREFERENCES and event.tenant_id:
        return [optout.lock_key(event.tenant_id, p[0]) for p in optout.marketing_preferences(_value(event))]
    return []


async def _account(conn: AsyncConnection, event: AccountEvent) -> None:
    await conn.execute(_ACCOUNT, {
        "event_id": event.event_id, "tenant_id": event.tenant_id, "waba_id": event.waba_id,
        "phone_number_id": event.phone_number_id or None, "field": event.field, "event": event.event,
        "payload": event.payload, "received_at": event.received_at})
    if event.field == USER_PREFERENCES and event.tenant_id:
        # Marketing messages stopped or resumed by the customer in WhatsApp: the contact's campaign opt-out.
        for wa_id, opted_out, at, detail in optout.marketing_preferences(_value(event)):
            await optout.record(conn, event_id=f"{event.event_id}:{wa_id}", tenant_id=event.tenant_id, wa_id=wa_id,
                                opted_out=opted_out, at=at or event.received_at, source="meta", detail=detail)


def _value(event: AccountEvent) -> dict[str, Any]:
    value = event.payload.get("value")
    return value if isinstance(value, dict) else {}
