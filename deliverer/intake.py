"""The deliverer's consumer: the topics that carry the facts → pending deliveries in PostgreSQL.

A ``Processor`` on the stream runtime (``broker.runtime``): each batch is mapped (``webhooks.mapping``), passed
through the guards, and written as events and deliveries in one transaction; the runtime commits the batch's
offsets only after that, so a crash loses nothing and a re-run batch adds nothing twice (a delivery is unique per
endpoint, event and origin). A record that cannot be read goes to the deliverer's dead-letter topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.runtime import Output
from deliverer.queue import Recorded, enqueue, live_endpoints, pass_guards
from schemas.catalogue import DELIVERER_GROUP
from webhooks.mapping import MAPPERS


def recorded_at(msg: Message) -> datetime:
    """When the record was written (its Kafka timestamp): the events' ``timestamp``, the same on every replay."""
    kind, ms = msg.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or ms is None or ms < 0:
        return datetime.now(UTC)
    return datetime.fromtimestamp(ms / 1000, UTC)


def mapped(msg: Message, prefix: str) -> list[Recorded]:
    """The tenant events one record stands for; ValueError for a record that cannot be read."""
    topic = (msg.topic() or "")[len(prefix):]
    try:
        events = MAPPERS[topic](msg.value() or b"")
    except (KeyError, ValidationError) as exc:
        raise ValueError(f"unreadable record of {msg.topic()}: {exc}") from exc
    at = recorded_at(msg)
    return [Recorded(e, at) for e in events]


class Intake:
    """Maps a batch and records its deliveries in one transaction; publishes nothing."""

    def __init__(self, engine: AsyncEngine, *, prefix: str, wake: asyncio.Event) -> None:
        self.engine = engine
        self.prefix = prefix
        self.wake = wake
        self.group_id = DELIVERER_GROUP
        self.topics = [prefix + name for name in MAPPERS]

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        items = [item for msg in batch for item in mapped(msg, self.prefix)]
        if not items:
            return []
        async with self.engine.begin() as conn:
            passed = await pass_guards(conn, items)
            targets = await live_endpoints(conn, {i.event.tenant_id for i in passed})
            added = await enqueue(conn, passed, targets)
        if added:
            self.wake.set()
        return []

    async def saved(self) -> None:
        """The batch's transaction is its state."""
