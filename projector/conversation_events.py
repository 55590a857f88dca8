"""The conversation processor's events → PostgreSQL: state, contacts, rule executions, history.

Every event is kept in ``conversation_events`` (unique by event id, so a redelivery is a no-op).
``ConversationChanged`` updates the conversation's state only when its version is newer than the
stored one, so a late or redelivered change never rolls the state back. A contact's tags,
attributes and opt-out are those of its latest ``ContactChanged`` (by time, then event id) and
``opted_out_at`` is when its current opt-out began; both are derived again from the recorded
changes, so they do not depend on the order the changes arrive in. ``RuleExecuted`` is also
written to ``rule_executions`` (what the rules API shows).
"""

from __future__ import annotations

from sqlalchemy import func, select, tuple_
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
    """The contact as its recorded changes say (the caller holds the contact's lock)."""
    ev = conversation_events
    changes = select(ev.c.payload, ev.c.at, ev.c.event_id).where(
        ev.c.tenant_id == event.tenant_id, ev.c.conversation_key == f"contact:{event.wa_id}",
        ev.c.kind == event.kind)
    newest = (ev.c.at.desc(), ev.c.event_id.desc())
    opted_out = ev.c.payload["opted_out"].as_boolean()
    latest = (await conn.execute(changes.order_by(*newest).limit(1))).one()
    since = None
    if latest.payload["opted_out"]:
        opted_in = (await conn.execute(changes.where(~opted_out).order_by(*newest).limit(1))).first()
        run = changes.where(opted_out)
        if opted_in is not None:
            run = run.where(tuple_(ev.c.at, ev.c.event_id) > tuple_(opted_in.at, opted_in.event_id))
        since = (await conn.execute(select(func.min(run.subquery().c.at)))).scalar()
    values = {"tags": latest.payload["tags"], "attributes": latest.payload["attributes"],
              "opted_out": bool(latest.payload["opted_out"]), "opted_out_at": since}
    stmt = insert(contacts).values(tenant_id=event.tenant_id, wa_id=event.wa_id, **values)
    await conn.execute(stmt.on_conflict_do_update(
        constraint="uq_contacts_tenant_wa_id",
        set_={**{k: stmt.excluded[k] for k in values}, "updated_at": func.now()}))
