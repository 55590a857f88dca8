"""Write routed events into PostgreSQL, idempotently.

A redelivered event changes nothing: messages are unique by (tenant, wamid) and outbound
messages also by (tenant, message_id), status history by (tenant, wamid, status), account
events by event id. Status merging follows ``schemas.status_rank``; the row is locked while
the decision is made. An outbound message is written when queued (wamid NULL), gets its wamid
from the dispatcher's result, and adopts any status Meta sent before that result was projected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import account_events, contacts, conversations, message_statuses, messages
from projector.conversation_events import write_conversation_event
from projector.signups import write_request, write_result
from schemas.conversation import AiOutcome, ContactChanged, ConversationChanged, RuleExecuted
from schemas.events import AccountEvent, Event, InboundMessage, StatusUpdate
from schemas.outbound import MessageQueued, OutboundResult
from schemas.signup import SignupRequest, SignupResult
from schemas.status_rank import status_wins


async def write_events(conn: AsyncConnection, events: Sequence[Event]) -> None:
    """Apply ``events`` in order inside the caller's transaction."""
    for event in events:
        if getattr(event, "tenant_id", None) is None:
            continue
        if isinstance(event, InboundMessage):
            await _inbound(conn, event)
        elif isinstance(event, StatusUpdate):
            await _status(conn, event)
        elif isinstance(event, AccountEvent):
            await _account(conn, event)
        elif isinstance(event, MessageQueued):
            await _queued(conn, event)
        elif isinstance(event, OutboundResult):
            await _result(conn, event)
        elif isinstance(event, SignupRequest):
            await write_request(conn, event)
        elif isinstance(event, SignupResult):
            await write_result(conn, event)
        elif isinstance(event, ConversationChanged | ContactChanged | RuleExecuted | AiOutcome):
            await write_conversation_event(conn, event)


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


async def _touch_conversation(conn: AsyncConnection, event: InboundMessage | StatusUpdate | MessageQueued, *,
                              inbound: bool) -> None:
    if isinstance(event, MessageQueued):
        wa_id, at = event.to, event.created_at
    else:
        wa_id = event.wa_id if isinstance(event, InboundMessage) else event.recipient_id
        at = event.timestamp
    values = {"key": event.conversation_key, "tenant_id": event.tenant_id,
              "phone_number_id": event.phone_number_id, "wa_id": wa_id,
              "last_message_at": at, "last_inbound_at": at if inbound else None}
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
    if current_row is None and event.biz_opaque_callback_data:
        current_row = await _adopt_by_idempotency_key(conn, event)
    if current_row is None:
        await _touch_conversation(conn, event, inbound=False)
        await conn.execute(insert(messages).values(
            tenant_id=tenant, wamid=event.wamid, conversation_key=event.conversation_key,
            direction="outbound", idempotency_key=event.biz_opaque_callback_data, **fields))
    else:
        await conn.execute(update(messages).where(messages.c.id == current_row.id).values(**fields))


async def _adopt_by_idempotency_key(conn: AsyncConnection, event: StatusUpdate) -> Any:
    """Meta's status names our idempotency key: give its wamid to our message that has none yet.

    This resolves an ambiguous send (the call timed out, Meta accepted it anyway): the status
    webhooks carry the key in ``biz_opaque_callback_data``.
    """
    row = (await conn.execute(select(messages.c.id, messages.c.status).where(
        messages.c.tenant_id == event.tenant_id, messages.c.idempotency_key == event.biz_opaque_callback_data,
        messages.c.wamid.is_(None)).with_for_update())).first()
    if row is not None:
        await conn.execute(update(messages).where(messages.c.id == row.id).values(wamid=event.wamid))
    return row


async def _account(conn: AsyncConnection, event: AccountEvent) -> None:
    await conn.execute(insert(account_events).values(
        event_id=event.event_id, tenant_id=event.tenant_id, waba_id=event.waba_id,
        phone_number_id=event.phone_number_id or None, field=event.field, event=event.event,
        payload=event.payload, received_at=event.received_at,
    ).on_conflict_do_nothing(index_elements=["event_id"]))


async def _queued(conn: AsyncConnection, event: MessageQueued) -> None:
    await _touch_conversation(conn, event, inbound=False)
    body = event.message.get(event.message_type)
    text = body.get("body") if event.message_type == "text" and isinstance(body, dict) else None
    await conn.execute(insert(messages).values(
        tenant_id=event.tenant_id, message_id=event.message_id, idempotency_key=event.idempotency_key,
        conversation_key=event.conversation_key, direction="outbound", type=event.message_type, text=text,
        payload=event.message, sent_at=event.created_at, status="queued", status_at=event.created_at,
        requested_by=event.requested_by,
    ).on_conflict_do_nothing(constraint="uq_messages_tenant_message_id"))


async def _result(conn: AsyncConnection, result: OutboundResult) -> None:
    tenant = result.tenant_id
    await conn.execute(insert(messages).values(
        tenant_id=tenant, message_id=result.message_id, idempotency_key=result.idempotency_key,
        conversation_key=result.conversation_key, direction="outbound", status="queued",
        status_at=result.completed_at,
    ).on_conflict_do_nothing(constraint="uq_messages_tenant_message_id"))
    row = (await conn.execute(select(messages.c.id, messages.c.wamid).where(
        messages.c.tenant_id == tenant, messages.c.message_id == result.message_id).with_for_update())).one()
    fields: dict[str, object] = {"attempts": result.attempts, "ambiguous": result.ambiguous}
    if result.outcome == "failed":
        fields.update(error_code=result.error_code, error_title=result.error_title,
                      error_details=result.error_details)
    wamid = row.wamid or result.wamid
    if row.wamid is None:
        # Statuses may have come first (or, after an ambiguous send, instead of a wamid): adopt that row.
        match = messages.c.wamid == result.wamid if result.wamid else \
            messages.c.idempotency_key == result.idempotency_key
        early_id = (await conn.execute(select(messages.c.id).where(
            messages.c.tenant_id == tenant, messages.c.message_id.is_(None), match)
            .order_by(messages.c.id).limit(1))).scalar()
        if early_id is not None:
            wamid = (await conn.execute(delete(messages).where(messages.c.id == early_id)
                                        .returning(messages.c.wamid))).scalar()
        if wamid is not None:
            fields["wamid"] = wamid
    history = (await conn.execute(select(message_statuses.c.status, message_statuses.c.status_at)
                                  .where(message_statuses.c.tenant_id == tenant, message_statuses.c.wamid == wamid)
                                  .order_by(message_statuses.c.status_at, message_statuses.c.id))).all() \
        if wamid else []
    # An ambiguous verdict yields to Meta's own statuses when they came.
    accepted = result.outcome == "accepted" or (result.ambiguous and bool(history))
    status = "accepted" if accepted else "failed"
    at = result.completed_at
    for entry in history:
        if status_wins(status, entry.status):
            status, at = entry.status, entry.status_at
    current = (await conn.execute(select(messages.c.status).where(messages.c.id == row.id))).scalar_one()
    if current in (None, "queued") or status_wins(current, status):
        fields.update(status=status, status_at=at)
    if fields:
        await conn.execute(update(messages).where(messages.c.id == row.id).values(**fields))
