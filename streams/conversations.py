"""The conversation processor: the single writer of each conversation's state.

One Faust agent reads ``wa.inbound`` and ``conversations.commands`` (both keyed by
conversation key, so one conversation lives on one partition). An inbound message refreshes
the 24-hour customer service window (in the ``conversations`` table, and as a Redis marker the
dispatcher reads). A ``send`` command is recorded (``conversations.events``), checked against
the window, and emitted to ``outbound.interactive``; a free-form message outside the window is
failed locally (``outbound.results`` and a failed status on ``wa.statuses``) and never sent.
Later issues add automations, the AI agent and hand-off here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from aerostic import redis_keys
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
    MessageQueued,
    OutboundRequest,
    SendCommand,
    local_failure,
    local_failure_status,
)

log = logging.getLogger(__name__)

WINDOW_S = 24 * 3600


class ConversationProcessor:
    """Holds the processor's collaborators; ``install()`` registers its agent on the app."""

    def __init__(self, app: faust.App, redis: Redis, *, prefix: str) -> None:
        self.app = app
        self.redis = redis
        self.prefix = prefix
        self.state = app.Table("conversations", default=None, partitions=INBOUND.partitions,
                               schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"))
        self._topics: dict[str, Any] = {}

    def install(self) -> None:
        source = self.app.topic(INBOUND.full_name(self.prefix), CONVERSATIONS_COMMANDS.full_name(self.prefix),
                                value_serializer="raw", key_serializer="raw", internal=False)
        self.app.agent(source, name="conversations")(self._agent)

    def _topic(self, spec_name: str) -> Any:
        if spec_name not in self._topics:
            self._topics[spec_name] = self.app.topic(spec_name, value_serializer="raw", key_serializer="raw",
                                                     internal=False)
        return self._topics[spec_name]

    async def _agent(self, stream: faust.StreamT) -> None:
        async for raw in stream:
            await self.handle(raw)

    async def handle(self, raw: bytes) -> None:
        try:
            kind = orjson.loads(raw).get("kind")
        except orjson.JSONDecodeError:
            log.error("undecodable conversation record skipped (%d bytes)", len(raw))
            return
        if kind == "inbound_message":
            await self._inbound(InboundMessage.decode(raw))
        elif kind == "send":
            await self._send(SendCommand.decode(raw))
        else:
            log.warning("conversation record of unknown kind %r skipped", kind)

    async def _inbound(self, event: InboundMessage) -> None:
        key = event.conversation_key
        state = dict(self.state.get(key) or {})
        at = event.timestamp.timestamp()
        if at > state.get("last_inbound_at", 0.0):
            state.update(tenant_id=event.tenant_id, last_inbound_at=at, window_until=at + WINDOW_S)
            state.setdefault("state", "bot")
            self.state[key] = state
            try:
                await self.redis.set(redis_keys.service_window(event.phone_number_id, event.wa_id), str(at),
                                     ex=WINDOW_S + 3600)
            except RedisError as exc:  # the request carries the window too; the marker only helps retries
                log.warning("service window marker not written for %s: %s", key, exc)

    async def _send(self, command: SendCommand) -> None:
        state = self.state.get(command.conversation_key) or {}
        window_until = float(state.get("window_until", 0.0))
        queued = MessageQueued(event_id=f"{command.message_id}:queued", tenant_id=command.tenant_id,
                               message_id=command.message_id, idempotency_key=command.idempotency_key,
                               phone_number_id=command.phone_number_id, to=command.to, message=command.message,
                               requested_by=command.requested_by, created_at=command.created_at)
        request = OutboundRequest(event_id=command.message_id, tenant_id=command.tenant_id,
                                  message_id=command.message_id, idempotency_key=command.idempotency_key,
                                  phone_number_id=command.phone_number_id, to=command.to, message=command.message,
                                  lane=command.lane, window_until=window_until, created_at=command.created_at)
        key = command.conversation_key.encode()
        sends = [await self._topic(CONVERSATIONS_EVENTS.full_name(self.prefix)).send(key=key, value=queued.encode())]
        if request.is_free_form and window_until <= time.time():
            result = local_failure(request, OUTSIDE_SERVICE_WINDOW,
                                   "free-form messages can only be sent within 24 hours of the customer's "
                                   "last message; send an approved template instead")
            sends.append(await self._topic(OUTBOUND_RESULTS.full_name(self.prefix)).send(
                key=key, value=result.encode()))
            sends.append(await self._topic(STATUSES.full_name(self.prefix)).send(
                key=key, value=local_failure_status(result).encode()))
        else:
            sends.append(await self._topic(OUTBOUND_INTERACTIVE.full_name(self.prefix)).send(
                key=key, value=request.encode()))
        await asyncio.gather(*sends)
