"""The send API: ``POST /v1/messages``, ``GET /v1/messages/{id}``, ``GET /v1/conversations/{key}/messages``.

A send is accepted (202) once the broker acknowledged its ``SendCommand`` on
``conversations.commands``, keyed by conversation so it is ordered with everything else about
that conversation; the conversation processor takes it from there. ``SendLedger`` (PostgreSQL,
24 h, ``api.send_ledger``) maps a client's idempotency key to the message id it was given and keeps
a small record of each accepted message, so a repeated request produces nothing, even after Redis
was lost, and ``GET`` knows a message before the projector has written it. Reads are always scoped
by tenant.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth import Principal, TenantDep
from api.deps import EngineDep, ProducerDep, SettingsDep
from api.media import media_refs, refuse_media
from api.message_models import (
    MessageAccepted,
    MessageCreate,
    MessageError,
    MessageItem,
    MessagePage,
    MessagePublic,
    StatusEntry,
)
from api.send_ledger import STALE_RESERVATION_S, SendLedger, SendRecord
from api.templates import refuse_template
from broker.producer import AsyncProducer, DeliveryError
from config.settings import IngressSettings
from db.tables import contact_identities, conversations, message_statuses, messages, phone_numbers
from schemas.catalogue import CONVERSATIONS_COMMANDS
from schemas.outbound import SendCommand

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["messages"])

UNKNOWN_NUMBER = "unknown phone number"
MessageIdPath = Annotated[str, Path(min_length=1, max_length=200)]


@router.post("/messages", status_code=status.HTTP_202_ACCEPTED, responses={
    401: {"description": "missing, invalid or revoked API key"},
    404: {"description": "the `from` number is not one of the tenant's connected numbers"},
    422: {"description": "invalid message; a template message Meta would refuse: `detail` is "
                         "`{code, reason, meta_code}` (template_not_approved, template_not_found, "
                         "template_parameter_mismatch, template_parameter_type)"},
    409: {"description": "a request with this idempotency_key is still in progress"},
    503: {"description": "the message could not be queued; retry with the same idempotency_key"}})
async def send_message(body: MessageCreate, principal: TenantDep, engine: EngineDep, producer: ProducerDep,
                       settings: SettingsDep) -> MessageAccepted:
    """Queue one message for sending; answers once the send command is durably in Kafka."""
    sender = await sender_number(engine, principal.tenant_id, body.from_)
    message = body.graph_message()
    await refuse_template(engine, principal.tenant_id, sender, message)  # Meta never sees a 1320xx we can predict
    await refuse_media(engine, principal.tenant_id, message)
    to = await person(engine, principal.tenant_id, body.addressee)
    command = send_command(principal, phone_number_id=sender, to=to, message=message,
                           idempotency_key=body.idempotency_key)
    return await queue_send(command, body.idempotency_key, engine=engine, producer=producer, settings=settings)


async def queue_send(command: SendCommand, idempotency_key: str | None, *, engine: AsyncEngine,
                     producer: AsyncProducer, settings: IngressSettings) -> MessageAccepted:
    """Publish ``command`` once per client ``idempotency_key``; answers after the broker acknowledged it."""
    topic = CONVERSATIONS_COMMANDS.full_name(settings.topic_prefix)
    ledger = SendLedger(engine, command.tenant_id)
    record = SendRecord.of(command)
    if not await ledger.reserve(idempotency_key, record):
        assert idempotency_key is not None  # a new message id never conflicts
        return await _repeat(ledger, producer, topic, idempotency_key, record)
    try:
        await _produce(producer, topic, command.conversation_key, command.encode())
    except HTTPException:
        if idempotency_key is not None:
            await ledger.release(idempotency_key, record.id)
        raise
    if idempotency_key is not None:
        await ledger.settled(record)
    return MessageAccepted(id=record.id, conversation_key=record.conversation_key)


async def person(engine: AsyncEngine, tenant_id: str, name: str) -> str:
    """The one identity (``schemas.identity``) of the customer a number or BSUID names: a customer first met
    by BSUID who later shared their number stays in that conversation whichever way a send names them."""
    query = select(contact_identities.c.canonical).where(contact_identities.c.tenant_id == tenant_id,
                                                         contact_identities.c.identity == name)
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar() or name


async def sender_number(engine: AsyncEngine, tenant_id: str, requested: str | None) -> str:
    """The tenant's connected number to send from: ``requested``, or its only one."""
    query = select(phone_numbers.c.phone_number_id).where(
        phone_numbers.c.tenant_id == tenant_id, phone_numbers.c.status == "connected")
    if requested is not None:
        query = query.where(phone_numbers.c.phone_number_id == requested)
    async with engine.connect() as conn:
        found = list((await conn.execute(query.limit(2))).scalars())
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, UNKNOWN_NUMBER if requested else "no connected phone number")
    if len(found) > 1:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "'from' is required: the tenant has more than one connected phone number")
    return str(found[0])


def send_command(principal: Principal, *, phone_number_id: str, to: str, message: dict[str, Any],
                 idempotency_key: str | None, author: Literal["api", "agent"] = "api") -> SendCommand:
    """A new ``SendCommand`` on behalf of ``principal`` (its downstream idempotency key is tenant-scoped)."""
    message_id = str(uuid.uuid4())
    downstream_key = f"{principal.tenant_id}:{idempotency_key or message_id}"
    return SendCommand(event_id=message_id, tenant_id=principal.tenant_id, message_id=message_id,
                       idempotency_key=downstream_key, phone_number_id=phone_number_id, to=to, message=message,
                       requested_by=principal.actor, created_at=datetime.now(UTC), author=author)


async def _produce(producer: AsyncProducer, topic: str, key: str, value: bytes) -> None:
    try:
        await producer.send(topic, value=value, key=key.encode())
    except DeliveryError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "the message could not be queued; retry with the same idempotency_key",
                            headers={"Retry-After": "1"}) from exc


async def _repeat(ledger: SendLedger, producer: AsyncProducer, topic: str, client_key: str,
                  attempt: SendRecord) -> MessageAccepted:
    """Answer a request whose idempotency key was already used; produces only to finish a dead reservation."""
    earlier = await ledger.earlier(client_key)
    if earlier is None:
        raise _in_progress()
    if earlier.fingerprint != attempt.fingerprint:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "this idempotency_key was already used for a different message")
    if earlier.command is not None:  # still reserved: queued by a request in flight, or by one that died
        if earlier.age_s() < STALE_RESERVATION_S:
            raise _in_progress()
        # The reserving request died before the broker acknowledged: send its command now. Ids and the
        # downstream idempotency key are the same, so a record that did land is absorbed downstream.
        await _produce(producer, topic, earlier.conversation_key, earlier.command.encode())
        await ledger.settled(earlier)
    return MessageAccepted(id=earlier.id, conversation_key=earlier.conversation_key, duplicate=True)


def _in_progress() -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, "a request with this idempotency_key is still in progress",
                         headers={"Retry-After": "1"})


@router.get("/messages/{message_id}", responses={404: {"description": "no such message for this tenant"}})
async def get_message(message_id: MessageIdPath, principal: TenantDep, engine: EngineDep) -> MessagePublic:
    """One message sent through the API, its current status and its status history."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(messages).where(
            messages.c.tenant_id == principal.tenant_id, messages.c.message_id == message_id))).first()
        history = await _history(conn, principal.tenant_id, row.wamid) if row is not None and row.wamid else []
    if row is not None:
        return MessagePublic(
            id=message_id, conversation_key=row.conversation_key, to=_recipient(row.conversation_key),
            direction=row.direction, type=row.type, status=row.status or "queued", wamid=row.wamid,
            error=_error(row), attempts=row.attempts or 0, ambiguous=bool(row.ambiguous),
            created_at=row.created_at, history=history)
    record = await SendLedger(engine, principal.tenant_id).find(message_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "message not found")
    return MessagePublic(
        id=record.id, conversation_key=record.conversation_key, to=_recipient(record.conversation_key),
        direction="outbound", type=record.type, status="queued", wamid=None, error=None, attempts=0,
        ambiguous=False, created_at=record.created_at, history=[])


async def _history(conn: AsyncConnection, tenant_id: str, wamid: str) -> list[StatusEntry]:
    result = await conn.execute(
        select(message_statuses.c.status, message_statuses.c.status_at, message_statuses.c.error_code)
        .where(message_statuses.c.tenant_id == tenant_id, message_statuses.c.wamid == wamid)
        .order_by(message_statuses.c.status_at, message_statuses.c.id))
    return [StatusEntry(status=r.status, at=r.status_at, error_code=r.error_code) for r in result]


@router.get("/conversations/{key}/messages",
            responses={404: {"description": "the conversation does not belong to this tenant"}})
async def list_conversation_messages(
    key: Annotated[str, Path(min_length=3, max_length=200)], principal: TenantDep, engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next` of the previous page")] = None,
) -> MessagePage:
    """A conversation's messages, newest first, in pages (keyset on the message row id)."""
    query = select(messages).where(messages.c.tenant_id == principal.tenant_id, messages.c.conversation_key == key)
    if before is not None:
        query = query.where(messages.c.id < int(before))
    async with engine.connect() as conn:
        rows = list(await conn.execute(query.order_by(messages.c.id.desc()).limit(limit + 1)))
        if not rows and not await _owns_conversation(conn, principal.tenant_id, key):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "conversation not found")
        page = rows[:limit]
        inbound = [(r.wamid, r.type) for r in page if r.direction == "inbound"]
        refs = await media_refs(conn, principal.tenant_id, inbound)
    items = [_item(r).model_copy(update={"media": refs.get(r.wamid)}) for r in page]
    return MessagePage(messages=items, next=str(page[-1].id) if len(rows) > limit else None)


async def _owns_conversation(conn: AsyncConnection, tenant_id: str, key: str) -> bool:
    owned = or_(
        exists().where(conversations.c.key == key, conversations.c.tenant_id == tenant_id),
        exists().where(messages.c.conversation_key == key, messages.c.tenant_id == tenant_id))
    return bool((await conn.execute(select(owned))).scalar())


def _item(row: Any) -> MessageItem:
    return MessageItem(id=row.message_id, wamid=row.wamid, direction=row.direction, type=row.type, text=row.text,
                       payload=row.payload, status=row.status, error=_error(row), sent_at=row.sent_at,
                       created_at=row.created_at, ambiguous=bool(row.ambiguous))


def _error(row: Any) -> MessageError | None:
    if row.error_code is None and row.error_title is None and row.error_details is None:
        return None
    return MessageError(code=row.error_code, title=row.error_title, details=row.error_details)


def _recipient(conversation_key: str) -> str:
    return conversation_key.partition(":")[2]
