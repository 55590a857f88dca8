"""The conversation processor's events → PostgreSQL: state, contacts, rule executions, history.

Every event is kept in ``conversation_events`` (unique by event id, so a redelivery is a no-op).
``ConversationChanged`` updates the conversation's state only when its version is newer than the
stored one, so a late or redelivered change never rolls the state back. A ``ContactChanged`` applies
what it did (a tag added or removed, an attribute set: ``contacts.store``; an opt-out or opt-in recorded
with its source, the contact's opt-out derived from all of them: ``contacts.optout``), since the API,
imports and Meta's webhooks change contacts too; an older event without its change stands for the whole
contact, the latest by time. ``RuleExecuted`` is also
written to ``rule_executions`` (what the rules API shows).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contacts import optout, store
from db.bulk import columns, json_text, reduce, rows_insert
from db.tables import contacts, conversation_events
from schemas.conversation import AiOutcome, ContactChanged, ConversationChanged, RuleExecuted

ConversationEvent = ConversationChanged | ContactChanged | RuleExecuted | AiOutcome

# Built once: a batch's events are bound as arrays (db.bulk).
_RECORD_COLUMNS = (("event_id", "text"), ("tenant_id", "uuid"), ("conversation_key", "text"), ("kind", "text"),
                   ("payload", "jsonb"), ("at", "timestamptz"))
_RECORD = rows_insert("conversation_events", _RECORD_COLUMNS,
                      "ON CONFLICT (event_id) DO NOTHING RETURNING conversation_events.event_id")
_STATE_COLUMNS = (("key", "text"), ("tenant_id", "uuid"), ("phone_number_id", "text"), ("wa_id", "text"),
                  ("state", "text"), ("assignee_id", "text"), ("team", "text"), ("handoff_reason", "text"),
                  ("version", "integer"), ("state_changed_at", "timestamptz"))
_CHANGED = rows_insert("conversations", _STATE_COLUMNS, (
    "ON CONFLICT (key) DO UPDATE SET " + ", ".join(f"{k} = excluded.{k}" for k, _ in _STATE_COLUMNS[4:])
    + " WHERE conversations.tenant_id = excluded.tenant_id AND conversations.version < excluded.version"))
_RULE_COLUMNS = (("event_id", "text"), ("tenant_id", "uuid"), ("rule_id", "text"), ("rule_name", "text"),
                 ("conversation_key", "text"), ("trigger_event", "text"), ("actions", "jsonb"), ("stopped", "boolean"),
                 ("executed_at", "timestamptz"))
_RULES = rows_insert("rule_executions", _RULE_COLUMNS, "ON CONFLICT (event_id) DO NOTHING")


async def write_conversation_events(conn: AsyncConnection, events: Sequence[ConversationEvent]) -> None:
    """Record a batch's events (in its order); apply each one recorded for the first time."""
    if not events:
        return
    recorded = set((await conn.execute(_RECORD, columns([k for k, _ in _RECORD_COLUMNS], [
        (e.event_id, e.tenant_id, f"contact:{e.wa_id}" if isinstance(e, ContactChanged) else e.conversation_key,
         e.kind, e.model_dump_json(), e.at) for e in events]))).scalars())
    new = list(reduce((e for e in events if e.event_id in recorded), lambda e: e.event_id,
                      lambda kept, _: kept).values())  # an event twice in the batch applies once
    await _changed(conn, [e for e in new if isinstance(e, ConversationChanged)])
    rules = [e for e in new if isinstance(e, RuleExecuted)]
    if rules:
        await conn.execute(_RULES, columns([k for k, _ in _RULE_COLUMNS], [
            (e.event_id, e.tenant_id, e.rule_id, e.rule_name, e.conversation_key, e.trigger_event,
             json_text(e.actions), e.stopped, e.at) for e in rules]))
    for event in new:
        if isinstance(event, ContactChanged):
            await _contact(conn, event)


async def _changed(conn: AsyncConnection, events: Sequence[ConversationChanged]) -> None:
    """A conversation takes the state of its newest version (of a tie, the first); a batch names each conversation
    with one tenant (``projector.writer``)."""
    if not events:
        return
    newest = reduce(events, lambda e: e.conversation_key, lambda kept, new: new if new.version > kept.version else kept)
    await conn.execute(_CHANGED, columns([k for k, _ in _STATE_COLUMNS], [
        (e.conversation_key, e.tenant_id, e.phone_number_id, e.wa_id, e.state, e.assignee_id, e.team, e.reason,
         e.version, e.at) for e in newest.values()]))


async def _contact(conn: AsyncConnection, event: ContactChanged) -> None:
    """Apply what the change did (the caller holds the contact's lock)."""
    change = event.change
    if change is None:
        await _snapshot(conn, event)
    elif change.type in ("opt_out", "opt_in"):
        await optout.record(conn, event_id=event.event_id, tenant_id=event.tenant_id, wa_id=event.wa_id,
                            opted_out=change.type == "opt_out", at=event.at, source=change.source or "conversation")
    elif change.tag is not None and change.type in ("add_tag", "remove_tag"):
        tag = [change.tag]
        await store.change_tags(conn, event.tenant_id, event.wa_id, add=tag if change.type == "add_tag" else [],
                                remove=tag if change.type == "remove_tag" else [])
    elif change.type == "set_attribute" and change.key is not None:
        await store.set_attributes(conn, event.tenant_id, event.wa_id, {change.key: change.value or ""})


async def _snapshot(conn: AsyncConnection, event: ContactChanged) -> None:
    """An event from before changes were named: the contact as its latest such event says."""
    ev = conversation_events
    latest = (await conn.execute(select(ev.c.payload).where(
        ev.c.tenant_id == event.tenant_id, ev.c.conversation_key == f"contact:{event.wa_id}", ev.c.kind == event.kind,
        ev.c.payload["change"].as_string().is_(None)).order_by(ev.c.at.desc(), ev.c.event_id.desc()).limit(1))).one()
    values = {"tags": latest.payload["tags"], "attributes": latest.payload["attributes"]}
    stmt = insert(contacts).values(tenant_id=event.tenant_id, wa_id=event.wa_id, **values)
    await conn.execute(stmt.on_conflict_do_update(
        constraint="uq_contacts_tenant_wa_id",
        set_={**{k: stmt.excluded[k] for k in values}, "updated_at": func.now()}))
    await optout.record(conn, event_id=f"conversation:{event.event_id}", tenant_id=event.tenant_id,
                        wa_id=event.wa_id, opted_out=event.opted_out, at=event.at, source="conversation")
