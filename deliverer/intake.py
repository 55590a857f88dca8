"""The deliverer's consumer: the topics that carry the facts → pending deliveries in PostgreSQL.

A ``Processor`` on the stream runtime (``broker.runtime``): each batch is mapped (``webhooks.mapping``), passed
through the guards, and written as events and deliveries in one transaction; the runtime commits the batch's
offsets only after that, so a crash loses nothing and a re-run batch adds nothing twice (a delivery is unique per
endpoint, event and origin). A record that cannot be read goes to the deliverer's dead-letter topic.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from datetime import UTC, datetime

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.runtime import Output
from deliverer.queue import Recorded, enqueue, live_endpoints, pass_guards
from schemas.catalogue import DELIVERER_GROUP
from webhooks.mapping import MAPPERS

SETTLE_S = 0.01  # a batch waits this long for the rest of its fetch, so one fetch is ordered as a whole


def _timestamp_ms(msg: Message) -> int | None:
    """The record's Kafka timestamp in ms, None without one."""
    kind, ms = msg.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE or ms is None or ms < 0 else ms


def recorded_at(msg: Message) -> datetime:
    """When the record was written (its Kafka timestamp): the events' ``timestamp``, the same on every replay."""
    ms = _timestamp_ms(msg)
    return datetime.now(UTC) if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def in_record_order(batch: Sequence[Message], prefix: str) -> list[Message]:
    """The batch as the records were written: each partition in offset order, partitions merged by record time,
    ties in the topics' causal order (``MAPPERS``). A fetch returns partitions in no causal order, so a
    conversation's hand-off (``conversations.events``) could otherwise come before the message that created it."""
    rank = {prefix + name: i for i, name in enumerate(MAPPERS)}
    runs: dict[tuple[str, int], list[Message]] = {}
    for msg in batch:
        runs.setdefault((msg.topic() or "", msg.partition() or 0), []).append(msg)
    ordered = sorted(runs.items(), key=lambda run: (rank.get(run[0][0], len(rank)), run[0][1]))
    return list(heapq.merge(*(msgs for _, msgs in ordered), key=lambda msg: _timestamp_ms(msg) or 0))


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
        items = [item for msg in in_record_order(batch, self.prefix) for item in mapped(msg, self.prefix)]
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
