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

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contacts import optout, store
from db.tables import contacts, conversation_events, conversations, rule_executions
from schemas.conversation import AiOutcome, ContactChanged, ConversationChanged, RuleExecuted


async def write_conversation_event(conn: AsyncConnection,
                                   event: ConversationChanged | ContactChanged | RuleExecuted | AiOutcome) -> None:
    key = f"contact:{event.wa_id}" if isinstance(event, ContactChanged) else event.conversation_key
    recorded = await conn.execute(insert(conversation_events).values(
        event_id=event.event_id, tenant_id=event.tenant_id, conversation_key=key,
        kind=event.kind, payload=event.model_dump(mode="json"), at=event.at,
    ).on_conflict_do_nothing(index_elements=["event_id"]).returning(conversation_events.c.id))
    if recorded.first() is None:
        return  # seen before
    if isinstance(event, ConversationChanged):
        await _changed(conn, event)
    elif isinstance(event, ContactChanged):
        await _contact(conn, event)
    elif isinstance(event, RuleExecuted):
        await conn.execute(insert(rule_executions).values(
            event_id=event.event_id, tenant_id=event.tenant_id, rule_id=event.rule_id, rule_name=event.rule_name,
            conversation_key=event.conversation_key, trigger_event=event.trigger_event, actions=event.actions,
            stopped=event.stopped, executed_at=event.at,
        ).on_conflict_do_nothing(index_elements=["event_id"]))


async def _changed(conn: AsyncConnection, event: ConversationChanged) -> None:
    values = {"state": event.state, "assignee_id": event.assignee_id, "team": event.team,
              "handoff_reason": event.reason, "version": event.version, "state_changed_at": event.at}
    stmt = insert(conversations).values(key=event.conversation_key, tenant_id=event.tenant_id,
                                        phone_number_id=event.phone_number_id, wa_id=event.wa_id, **values)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[conversations.c.key], set_={k: stmt.excluded[k] for k in values},
        where=(conversations.c.tenant_id == stmt.excluded.tenant_id)
        & (conversations.c.version < stmt.excluded.version)))


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
