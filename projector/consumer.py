"""The projector process: routed topics → PostgreSQL, offsets committed after the write.

Reads ``wa.inbound``, ``wa.statuses``, ``wa.account.events``, ``conversations.events``,
``outbound.results`` and the ``signup.*`` topics in batches with a
confluent-kafka consumer group, writes each batch in one transaction, then commits the
batch's offsets synchronously. A failed write is retried with back-off and never skipped;
a record that cannot be decoded is logged with its position and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.batches import next_batch
from config.settings import ProjectorSettings
from projector.writer import write_events
from schemas.catalogue import (
    ACCOUNT_EVENTS,
    CONVERSATIONS_EVENTS,
    INBOUND,
    OUTBOUND_RESULTS,
    SIGNUP_REQUESTS,
    SIGNUP_RESULTS,
    STATUSES,
)
from schemas.conversation import CONVERSATION_EVENT
from schemas.events import AccountEvent, Event, InboundMessage, StatusUpdate
from schemas.outbound import OutboundResult
from schemas.signup import SignupRequest, SignupResult

log = logging.getLogger(__name__)

# How each topic's values are read; ``conversations.events`` holds several kinds (see schemas.conversation).
DECODERS: dict[str, Callable[[bytes], Event]] = {
    INBOUND.name: InboundMessage.decode, STATUSES.name: StatusUpdate.decode, ACCOUNT_EVENTS.name: AccountEvent.decode,
    CONVERSATIONS_EVENTS.name: CONVERSATION_EVENT.validate_json, OUTBOUND_RESULTS.name: OutboundResult.decode,
    SIGNUP_REQUESTS.name: SignupRequest.decode, SIGNUP_RESULTS.name: SignupResult.decode,
}


class Projector:
    """Consume, write, commit; until ``stop()``."""

    def __init__(self, settings: ProjectorSettings) -> None:
        self.settings = settings
        self.prefix = settings.topic_prefix
        self.consumer = Consumer({
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": settings.group_id,
            "fetch.wait.max.ms": settings.kafka_fetch_wait_ms,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.kafka_session_timeout_ms,
            "heartbeat.interval.ms": 1000,
            "log_level": 3,
        })
        self.engine: AsyncEngine = create_async_engine(settings.database_url.get_secret_value(),
                                                       pool_size=2)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self.consumer.subscribe([self.prefix + name for name in DECODERS])
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping.is_set():
                batch = await loop.run_in_executor(None, next_batch, self.consumer, self.settings.batch_size,
                                                   self.settings.batch_wait_s)
                if batch:
                    await self._write_with_retry(self._decode(batch))
                    await loop.run_in_executor(None, self._commit, batch)
        finally:
            await loop.run_in_executor(None, self.consumer.close)
            await self.engine.dispose()

    def _decode(self, batch: Sequence[Message]) -> list[Event]:
        events: list[Event] = []
        for msg in batch:
            if msg.error():
                log.warning("consume error: %s", msg.error())
                continue
            topic = (msg.topic() or "")[len(self.prefix):]
            try:
                events.append(DECODERS[topic](msg.value() or b""))
            except (KeyError, ValidationError) as exc:
                log.error("undecodable record %s[%s]@%s skipped: %s", msg.topic(), msg.partition(),
                          msg.offset(), exc)
        return events

    async def _write_with_retry(self, events: list[Event]) -> None:
        delay = 0.1
        while True:
            try:
                async with self.engine.begin() as conn:
                    await write_events(conn, events)
                return
            except (OperationalError, DBAPIError, OSError) as exc:
                log.error("batch of %d not written, retrying in %.1fs: %s", len(events), delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _commit(self, batch: Sequence[Message]) -> None:
        last: dict[tuple[str, int], int] = {}
        for msg in batch:
            if not msg.error():
                last[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
        offsets = [TopicPartition(t, p, o) for (t, p), o in last.items()]
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. partitions revoked meanwhile: redelivered, idempotent
            log.warning("offset commit failed; the batch will be redelivered: %s", exc)


def run(settings: ProjectorSettings | None = None) -> None:
    """Run the projector until SIGINT/SIGTERM."""

    async def main() -> None:
        projector = Projector(settings or ProjectorSettings())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, projector.stop)
        await projector.run()

    asyncio.run(main())
