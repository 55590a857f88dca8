"""The conversation processor: the single writer of each conversation's state.

It reads ``wa.inbound`` and ``conversations.commands`` (both keyed by conversation key, range
assignment: one conversation lives on one partition of each, owned by one worker). An inbound
message refreshes the 24-hour customer service window. A ``send`` command is recorded
(``conversations.events``), checked against the window and emitted to ``outbound.interactive``;
a free-form message outside the window is failed locally (``outbound.results`` and a failed
status on ``wa.statuses``) and never sent. State lives in a Redis hash per conversation,
written only after the batch's outputs were acknowledged; the window also goes to the marker
the dispatcher reads. Before failing a send for a closed window, the processor asks
PostgreSQL: the projector may have stored an inbound message this processor has not read yet
(the two consume ``wa.inbound`` independently), and after a Redis loss it restores the window.
Later issues add automations, the AI agent and hand-off here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from confluent_kafka import Message
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from aerostic import redis_keys
from db.tables import conversations
from schemas.catalogue import (
    CONVERSATIONS_COMMANDS,
    CONVERSATIONS_EVENTS,
    INBOUND,
    OUTBOUND_INTERACTIVE,
    OUTBOUND_RESULTS,
    STATUSES,
)
from schemas.events import InboundMessage
from schemas.outbound import (
    OUTSIDE_SERVICE_WINDOW,
    SERVICE_WINDOW_S,
    MessageQueued,
    OutboundRequest,
    SendCommand,
    local_failure,
    local_failure_status,
)
from streams.runtime import Output

log = logging.getLogger(__name__)

STATE_TTL_S = 90 * 24 * 3600


class ConversationProcessor:
    """The ``Processor`` of ``wa.inbound`` + ``conversations.commands``."""

    group_id = "aerostic-conversations"

    def __init__(self, redis: Redis, engine: AsyncEngine, *, prefix: str) -> None:
        self.redis = redis
        self.engine = engine
        self.prefix = prefix
        self.topics = [INBOUND.full_name(prefix), CONVERSATIONS_COMMANDS.full_name(prefix)]
        self._states: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        records = [r for r in (self._decode(m) for m in batch) if r is not None]
        self._states = await self._load({r.conversation_key for r in records})
        self._dirty = set()
        outputs: list[Output] = []
        for record in records:
            if isinstance(record, InboundMessage):
                self._inbound(record)
            else:
                await self._refresh_window(record)
                outputs.extend(self._send(record))
        return outputs

    async def _refresh_window(self, command: SendCommand) -> None:
        """A closed window in our state may be newer in PostgreSQL (see the module docstring)."""
        key = command.conversation_key
        state = self._states.setdefault(key, {})
        if state.get("tenant_id") == command.tenant_id and float(state.get("window_until", 0.0)) > time.time():
            return
        async with self.engine.connect() as conn:
            last = (await conn.execute(select(conversations.c.last_inbound_at).where(
                conversations.c.key == key, conversations.c.tenant_id == command.tenant_id))).scalar()
        if last is not None:
            self._customer_wrote(key, command.tenant_id, last.timestamp())

    async def saved(self) -> None:
        if not self._dirty:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self._dirty:
                state = self._states[key]
                pipe.set(redis_keys.conversation(key), orjson.dumps(state), ex=STATE_TTL_S)
                pnid, _, wa_id = key.partition(":")
                pipe.set(redis_keys.service_window(pnid, wa_id), str(state["last_inbound_at"]),
                         ex=SERVICE_WINDOW_S + 3600)
            await pipe.execute()

    def _decode(self, msg: Message) -> InboundMessage | SendCommand | None:
        raw = msg.value() or b""
        try:
            kind = orjson.loads(raw).get("kind")
            if kind == "inbound_message":
                return InboundMessage.decode(raw)
            if kind == "send":
                return SendCommand.decode(raw)
        except (orjson.JSONDecodeError, ValidationError, AttributeError) as exc:
            log.error("undecodable record %s[%s]@%s skipped: %s", msg.topic(), msg.partition(), msg.offset(), exc)
            return None
        log.warning("record of unknown kind %r at %s[%s]@%s skipped", kind, msg.topic(), msg.partition(),
                    msg.offset())
        return None

    async def _load(self, keys: set[str]) -> dict[str, dict[str, Any]]:
        ordered = sorted(keys)
        values = await self.redis.mget([redis_keys.conversation(k) for k in ordered]) if ordered else []
        return {k: (orjson.loads(v) if v else {}) for k, v in zip(ordered, values, strict=True)}

    def _inbound(self, event: InboundMessage) -> None:
        self._customer_wrote(event.conversation_key, event.tenant_id, event.timestamp.timestamp())

    def _customer_wrote(self, key: str, tenant_id: str | None, at: float) -> None:
        """The customer's message at ``at`` (epoch s) opens the window, unless a later one already did."""
        state = self._states.setdefault(key, {})
        if at > float(state.get("last_inbound_at", 0.0)):
            state.update(tenant_id=tenant_id, last_inbound_at=at, window_until=at + SERVICE_WINDOW_S)
            state.setdefault("state", "bot")
            self._dirty.add(key)

    def _send(self, command: SendCommand) -> list[Output]:
        state = self._states.get(command.conversation_key, {})
        window_until = float(state.get("window_until", 0.0)) if state.get("tenant_id") == command.tenant_id else 0.0
        common = {"tenant_id": command.tenant_id, "message_id": command.message_id,
                  "idempotency_key": command.idempotency_key, "phone_number_id": command.phone_number_id,
                  "to": command.to, "message": command.message, "created_at": command.created_at}
        queued = MessageQueued(event_id=f"{command.message_id}:queued", requested_by=command.requested_by, **common)
        request = OutboundRequest(event_id=command.message_id, lane=command.lane, window_until=window_until,
                                  **common)
        key = command.conversation_key.encode()
        outputs = [Output(CONVERSATIONS_EVENTS.full_name(self.prefix), key, queued.encode())]
        if request.is_free_form and window_until <= time.time():
            result = local_failure(request, OUTSIDE_SERVICE_WINDOW,
                                   "free-form messages can only be sent within 24 hours of the customer's "
                                   "last message; send an approved template instead")
            outputs.append(Output(OUTBOUND_RESULTS.full_name(self.prefix), key, result.encode()))
            outputs.append(Output(STATUSES.full_name(self.prefix), key, local_failure_status(result).encode()))
        else:
            outputs.append(Output(OUTBOUND_INTERACTIVE.full_name(self.prefix), key, request.encode()))
        return outputs
