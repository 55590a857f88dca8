"""The conversation processor's events → PostgreSQL: state, contacts, rule executions, history.

Every event is kept in ``conversation_events`` (unique by event id, so a redelivery is a no-op).
``ConversationChanged`` updates the conversation's row only when its version is newer than the
stored one, so a redelivered or reordered change never rolls the state back. ``ContactChanged``
replaces the contact's tags, attributes and opt-out; ``RuleExecuted`` is also written to
``rule_executions`` (what the rules API shows).
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

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
    values = {"tags": event.tags, "attributes": event.attributes, "opted_out": event.opted_out}
    stmt = insert(contacts).values(tenant_id=event.tenant_id, wa_id=event.wa_id,
                                   opted_out_at=event.at if event.opted_out else None, **values)
    await conn.execute(stmt.on_conflict_do_update(
        constraint="uq_contacts_tenant_wa_id",
        set_={**{k: stmt.excluded[k] for k in values},
              "opted_out_at": func.coalesce(contacts.c.opted_out_at, stmt.excluded.opted_out_at)
              if event.opted_out else None,
              "updated_at": func.now()}))
