"""Write routed events into PostgreSQL, idempotently.

A redelivered event changes nothing: messages are unique by (tenant, wamid), status history by
(tenant, wamid, status), account events by event id. Status merging follows
``schemas.status_rank``; the row is locked while the decision is made.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import account_events, contacts, conversations, message_statuses, messages
from schemas.events import AccountEvent, InboundMessage, RoutedEvent, StatusUpdate
from schemas.status_rank import status_wins


async def write_events(conn: AsyncConnection, events: Sequence[RoutedEvent]) -> None:
    """Apply ``events`` in order inside the caller's transaction."""
    for event in events:
        if event.tenant_id is None:
            continue
        if isinstance(event, InboundMessage):
            await _inbound(conn, event)
        elif isinstance(event, StatusUpdate):
            await _status(conn, event)
        elif isinstance(event, AccountEvent):
            await _account(conn, event)


async def _inbound(conn: AsyncConnection, event: InboundMessage) -> None:
    tenant = event.tenant_id
    stmt = insert(contacts).values(tenant_id=tenant, wa_id=event.wa_id, profile_name=event.profile_name)
    await conn.execute(stmt.on_conflict_do_update(
        constraint="uq_contacts_tenant_wa_id",
        set_={"profile_name": func.coalesce(stmt.excluded.profile_name, contacts.c.profile_name),
              "updated_at": func.now()}))
    await _touch_conversation(conn, event, inbound=True)
    await conn.execute(insert(messages).values(
        tenant_id=tenant, wamid=event.wamid, conversation_key=event.conversation_key, direction="inbound",
        type=event.type, text=event.text, payload=event.payload, sent_at=event.timestamp,
    ).on_conflict_do_nothing(constraint="uq_messages_tenant_wamid"))


async def _touch_conversation(conn: AsyncConnection, event: InboundMessage | StatusUpdate, *,
                              inbound: bool) -> None:
    wa_id = event.wa_id if isinstance(event, InboundMessage) else event.recipient_id
    values = {"key": event.conversation_key, "tenant_id": event.tenant_id,
              "phone_number_id": event.phone_number_id, "wa_id": wa_id,
              "last_message_at": event.timestamp, "last_inbound_at": event.timestamp if inbound else None}
    stmt = insert(conversations).values(**values)
    changes = {"last_message_at": func.greatest(conversations.c.last_message_at, stmt.excluded.last_message_at)}
    if inbound:
        changes["last_inbound_at"] = func.greatest(conversations.c.last_inbound_at,
                                                   stmt.excluded.last_inbound_at)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=["key"], set_=changes, where=conversations.c.tenant_id == stmt.excluded.tenant_id))


async def _status(conn: AsyncConnection, event: StatusUpdate) -> None:
    tenant = event.tenant_id
    current_row = (await conn.execute(
        select(messages.c.id, messages.c.status)
        .where(messages.c.tenant_id == tenant, messages.c.wamid == event.wamid)
        .with_for_update())).first()
    current = current_row.status if current_row else None
    wins = status_wins(current, event.status)
    inserted = (await conn.execute(insert(message_statuses).values(
        tenant_id=tenant, wamid=event.wamid, status=event.status, status_at=event.timestamp, applied=wins,
        error_code=event.error_code, payload=event.payload,
    ).on_conflict_do_nothing(constraint="uq_statuses_tenant_wamid_status")
        .returning(message_statuses.c.id))).first()
    if inserted is None or not wins:
        return
    fields = {"status": event.status, "status_at": event.timestamp, "error_code": event.error_code,
              "error_title": event.error_title, "error_details": event.error_details}
    if current_row is None:
        await _touch_conversation(conn, event, inbound=False)
        await conn.execute(insert(messages).values(
            tenant_id=tenant, wamid=event.wamid, conversation_key=event.conversation_key,
            direction="outbound", **fields))
    else:
        await conn.execute(update(messages).where(messages.c.id == current_row.id).values(**fields))


async def _account(conn: AsyncConnection, event: AccountEvent) -> None:
    await conn.execute(insert(account_events).values(
        event_id=event.event_id, tenant_id=event.tenant_id, waba_id=event.waba_id,
        phone_number_id=event.phone_number_id or None, field=event.field, event=event.event,
        payload=event.payload, received_at=event.received_at,
    ).on_conflict_do_nothing(index_elements=["event_id"]))
