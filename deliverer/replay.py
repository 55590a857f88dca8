"""Redelivery: an endpoint asked for one event or a time range again (``POST /v1/webhooks/{id}/redeliver``).

The records are read again from Kafka (each source topic from the first offset at or after the range's start, by
``offsets_for_times``, until a record past its end or the partition's end), mapped as the intake maps them, kept
when they belong to the endpoint's tenant, match its filter and fall in the range (by their record time, the
events' ``timestamp``), and queued for that endpoint alone with the request as their origin: the same ids and
bodies as the first time. The deliveries and the request's completion are written in one transaction, so a
request cut short by a crash is simply done again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.consumer import reader_config
from config.settings import DelivererSettings
from db.tables import webhook_redeliveries
from deliverer.intake import mapped, recorded_at
from deliverer.queue import Recorded, endpoint_target, enqueue, replayed_guards
from webhooks.mapping import MAPPERS

log = logging.getLogger(__name__)

CLOCK_SLACK_MS = 60_000  # producers' clocks: a record's time may run a little behind its offset order
MAX_RECORDS = 2_000_000  # scanned per request, at most
MAX_EVENTS = 100_000  # redelivered per request, at most
STALL_S = 60.0


class TooLarge(Exception):
    """The range holds more than one request may redeliver."""


def scan(settings: DelivererSettings, topic: str, since_ms: int, until_ms: int) -> Iterator[Message]:
    """The records of ``topic`` written in [since_ms, until_ms] (and a few around it), partition by partition."""
    consumer = Consumer(reader_config(settings, enable_partition_eof=True, fetch_wait_max_ms=50))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        starts = [TopicPartition(topic, p, max(since_ms - CLOCK_SLACK_MS, 0)) for p in partitions]
        try:
            found = consumer.offsets_for_times(starts, timeout=10)
        except KafkaException:
            found = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        assign = [tp if tp.error is None and tp.offset >= 0 else TopicPartition(topic, tp.partition, OFFSET_BEGINNING)
                  for tp in found]
        consumer.assign(assign)
        pending = {tp.partition for tp in assign}
        deadline = time.monotonic() + STALL_S
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} stalled")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            deadline = time.monotonic() + STALL_S
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition() or 0)
                continue
            ms = msg.timestamp()[1]
            if ms > until_ms + CLOCK_SLACK_MS:
                pending.discard(msg.partition() or 0)
                consumer.pause([TopicPartition(topic, msg.partition() or 0)])
                continue
            yield msg
    finally:
        consumer.close()


def collect(settings: DelivererSettings, request: dict[str, Any]) -> list[Recorded]:
    """The events of the request's tenant in its range (and its one event, when it names one), in record order."""
    since_ms = round(request["since"].timestamp() * 1000)
    until_ms = round(request["until"].timestamp() * 1000)
    found: list[tuple[datetime, int, Recorded]] = []
    scanned = 0
    prefix = settings.topic_prefix
    for topic in MAPPERS:
        for msg in scan(settings, prefix + topic, since_ms, until_ms):
            scanned += 1
            if scanned > MAX_RECORDS:
                raise TooLarge(f"the range holds more than {MAX_RECORDS} records; ask for a shorter one")
            at = recorded_at(msg)
            if not since_ms <= round(at.timestamp() * 1000) <= until_ms:
                continue
            try:
                items = mapped(msg, prefix)
            except ValueError:
                continue  # the intake set it aside as a dead letter
            for item in items:
                if item.event.tenant_id != request["tenant_id"]:
                    continue
                if request["event_id"] is not None and item.event.id != request["event_id"]:
                    continue
                found.append((at, len(found), item))
                if len(found) > MAX_EVENTS:
                    raise TooLarge(f"the range holds more than {MAX_EVENTS} events; ask for a shorter one")
    return [item for _, _, item in sorted(found, key=lambda f: (f[0], f[1]))]


class Replayer:
    """Carries out redelivery requests, oldest first, one at a time."""

    def __init__(self, engine: AsyncEngine, settings: DelivererSettings, wake: asyncio.Event) -> None:
        self.engine = engine
        self.settings = settings
        self.wake = wake

    async def run(self) -> None:
        while True:
            if not await self.once():
                await asyncio.sleep(max(self.settings.webhook_poll_s, 0.5))

    async def once(self) -> bool:
        """Carry out the oldest request, if any; True when there was one."""
        t = webhook_redeliveries.c
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(webhook_redeliveries).where(t.state == "requested")
                                      .order_by(t.requested_at).limit(1))).first()
        if row is None:
            return False
        request = dict(row._mapping)
        try:
            items = await asyncio.get_running_loop().run_in_executor(None, collect, self.settings, request)
        except (TooLarge, TimeoutError, KafkaException) as exc:
            async with self.engine.begin() as conn:
                await conn.execute(update(webhook_redeliveries).where(t.id == request["id"]).values(
                    state="failed", error=str(exc)[:500], done_at=datetime.now(request["since"].tzinfo)))
            return True
        async with self.engine.begin() as conn:
            passed = await replayed_guards(conn, items)
            targets = await endpoint_target(conn, request["tenant_id"], request["endpoint_id"])
            added = await enqueue(conn, passed, targets, origin=str(request["id"]))
            await conn.execute(update(webhook_redeliveries).where(t.id == request["id"]).values(
                state="done", events=added, done_at=datetime.now(request["since"].tzinfo)))
        log.info("redelivery %s: %d events queued for endpoint %s", request["id"], added, request["endpoint_id"])
        self.wake.set()
        return True
