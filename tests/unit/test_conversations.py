"""The conversation processor's rules, in process: window, local failure, outputs and saved state."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.events import InboundMessage
from schemas.outbound import MessageQueued, OutboundRequest, OutboundResult, SendCommand
from streams.conversations import ConversationProcessor

PNID, CUSTOMER, TENANT = "106540352242922", "16505551234", "tenant-1"


class _Message:
    def __init__(self, value: bytes, topic: str, offset: int) -> None:
        self._value, self._topic, self._offset = value, topic, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class _Pipeline:
    def __init__(self, store: dict[str, bytes]) -> None:
        self.store = store

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def set(self, key: str, value: Any, ex: int | None = None) -> None:
        self.store[key] = value if isinstance(value, bytes) else str(value).encode()

    async def execute(self) -> None:
        return None


class _Redis:
    """Just what the processor uses: MGET and a pipeline of SETs."""

    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        return [self.store.get(k) for k in keys]

    def pipeline(self, transaction: bool = False) -> _Pipeline:
        return _Pipeline(self.store)


class _Result:
    def __init__(self, value: Any) -> None:
        self.value = value

    def scalar(self) -> Any:
        return self.value


class _Connection:
    def __init__(self, last_inbound: datetime | None) -> None:
        self.last_inbound = last_inbound

    async def __aenter__(self) -> _Connection:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def execute(self, _query: Any) -> _Result:
        return _Result(self.last_inbound)


class _Engine:
    """PostgreSQL's view of the conversation: when the customer last wrote (or None)."""

    def __init__(self, last_inbound: datetime | None = None) -> None:
        self.last_inbound = last_inbound

    def connect(self) -> _Connection:
        return _Connection(self.last_inbound)


def _inbound(at: datetime, offset: int = 0) -> _Message:
    event = InboundMessage(event_id=f"in{offset}", tenant_id=TENANT, phone_number_id=PNID, waba_id="w",
                           received_at=at, wamid=f"wamid.{offset}", wa_id=CUSTOMER, type="text", timestamp=at,
                           text="hi", payload={})
    return _Message(event.encode(), "wa.inbound", offset)


def _send(message: dict[str, Any], offset: int = 1) -> _Message:
    command = SendCommand(event_id=f"m{offset}", tenant_id=TENANT, message_id=f"m{offset}",
                          idempotency_key=f"{TENANT}:m{offset}", phone_number_id=PNID, to=CUSTOMER,
                          message=message, requested_by="api_key:k", created_at=datetime.now(UTC))
    return _Message(command.encode(), "conversations.commands", offset)


TEXT = {"type": "text", "text": {"body": "hello"}}
TEMPLATE = {"type": "template", "template": {"name": "hi", "language": {"code": "en_US"}}}


@pytest.fixture
def processor() -> ConversationProcessor:
    return ConversationProcessor(_Redis(), _Engine(), prefix="")  # type: ignore[arg-type]


async def test_a_reply_inside_the_window_is_queued_and_sent(processor: ConversationProcessor) -> None:
    now = datetime.now(UTC)
    outputs = await processor.process([_inbound(now), _send(TEXT)])  # type: ignore[list-item]
    assert [o.topic for o in outputs] == ["conversations.events", "outbound.interactive"]
    assert MessageQueued.decode(outputs[0].value).message_id == "m1"
    request = OutboundRequest.decode(outputs[1].value)
    assert request.window_until == pytest.approx(now.timestamp() + 86400)
    assert outputs[1].key == f"{PNID}:{CUSTOMER}".encode()


async def test_free_form_outside_the_window_fails_locally_and_a_template_goes(
        processor: ConversationProcessor) -> None:
    old = datetime.now(UTC) - timedelta(hours=25)
    outputs = await processor.process([_inbound(old), _send(TEXT), _send(TEMPLATE, 2)])  # type: ignore[list-item]
    topics = [o.topic for o in outputs]
    assert topics == ["conversations.events", "outbound.results", "wa.statuses",
                      "conversations.events", "outbound.interactive"]
    result = OutboundResult.decode(outputs[1].value)
    assert (result.outcome, result.error_title, result.local) == ("failed", "outside_service_window", True)


async def test_state_is_written_only_when_saved(processor: ConversationProcessor) -> None:
    redis: Any = processor.redis
    now = datetime.now(UTC)
    await processor.process([_inbound(now)])  # type: ignore[list-item]
    assert redis.store == {}
    await processor.saved()
    state = orjson.loads(redis.store[f"aer:conv:{PNID}:{CUSTOMER}"])
    assert state["window_until"] == pytest.approx(now.timestamp() + 86400)
    assert float(redis.store[f"aer:window:{PNID}:{CUSTOMER}"]) == pytest.approx(now.timestamp())


async def test_a_window_only_postgres_knows_of_still_counts() -> None:
    """The projector stored a customer message this processor has not read yet (or Redis was lost)."""
    recent = datetime.now(UTC) - timedelta(minutes=5)
    processor = ConversationProcessor(_Redis(), _Engine(recent), prefix="")  # type: ignore[arg-type]
    outputs = await processor.process([_send(TEXT)])  # type: ignore[list-item]
    assert [o.topic for o in outputs] == ["conversations.events", "outbound.interactive"]
    assert OutboundRequest.decode(outputs[1].value).window_until > time.time()


async def test_an_undecodable_record_is_skipped_not_fatal(processor: ConversationProcessor) -> None:
    outputs = await processor.process([_Message(b"not json", "wa.inbound", 0), _send(TEMPLATE)])  # type: ignore[list-item]
    assert [o.topic for o in outputs] == ["conversations.events", "outbound.interactive"]
