"""The stream workers' runtime: consume a batch, handle it in order, publish, save state, commit.

Each ``Processor`` gets its own consumer group. For every batch the runtime calls
``process(batch)`` (which returns the records to publish, in order), waits until the broker
acknowledged every one of them, calls ``saved()`` so the processor can write the state that
goes with the batch, and only then may the batch's offsets be committed. A crash anywhere re-runs
the batch from the last commit: outputs may repeat (every consumer downstream is idempotent),
nothing is skipped.

The batch loop does not wait for commits. A batch's offsets join those handled and not yet committed, which
go to the broker in one asynchronous commit once none is in flight and the last one is ``COMMIT_EVERY_S`` old;
its answer, served by a later poll of the consumer, counts ``commits_ok``/``commits_refused`` and lets the next
one go. So a batch costs no broker round trip and no thread-pool hop for its commit, and a group commits at
most ``1 / COMMIT_EVERY_S`` times a second, not once per batch (each commit costs the broker and this process
CPU; a crash re-runs that much more at most). A batch that set a record aside (a dead letter) is committed at once,
so a crash rarely writes the same dead letter twice. A refused commit is not retried: its records are handled again
by whoever owns the partition next, as before.

When partitions are revoked (a rebalance, or ``close`` at stop, which revokes the assignment before leaving
the group), the revoke callback commits synchronously what was handled of them, the offsets of the commit in
flight included, so their next owner starts right after the last record handled. librdkafka counts the commits
in flight: it fetches no new assignment and does not finish ``close`` before they are answered (their
``on_commit`` runs inside ``close``), and commits reach the group coordinator in the order they were made, so
the synchronous one lands last. Partitions *lost* (the session timed out: another member may own them already)
are forgotten without a commit.

The loop first takes what the consumer has already fetched, on the event loop's thread (that never waits),
and goes to the thread pool only to wait for records.

Failures are of two kinds. An unreachable broker, Redis or PostgreSQL is *transient*: the batch is
retried with back-off, its partitions paused and the consumer still polled so it keeps its place in
the group; SIGTERM still stops the worker. Anything else is the record's own (a bad rule, a value no
code expected): the batch is re-run one record at a time and the record that fails alone, after a
few tries, goes to the group's dead-letter topic with the error and its source position; the worker
goes on with the next record. A worker given a ``deadline_s`` also gives up on a batch whose ``process`` or
``saved`` has not returned by then (a service that stopped answering without closing its connections) and retries
it as transient, each time with twice the time (at most ``DEADLINE_STRETCH_MAX`` times the deadline, back to it once
a batch is handled): the guard for clients whose commands carry no timeout of their own (``streams.main``).

Why not Faust: with faust-streaming 0.15.3 on our broker, a worker restarted over a backlog
skipped (and committed past) the first batch it fetched: 26 to 166 of 2,000 webhooks lost in
about one restart out of three. These loops keep the commit rule explicit and testable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple, Protocol, TypeVar

import asyncpg
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from broker.batches import next_batch, ready, settled
from broker.consumer import COMMIT_EVERY_S, CommitError, build_consumer, commit, refused, subscribe
from broker.metrics import DEAD_LETTERS, GroupMetrics, slices
from broker.producer import AsyncProducer, DeliveryError
from config.logs import bind, log_context
from config.settings import CoreSettings
from schemas.catalogue import DEAD_LETTERS as DEAD_LETTERS_OF
from schemas.catalogue import dead_letters
from schemas.dead_letter import DeadLetter

log = logging.getLogger(__name__)
T = TypeVar("T")

OWN_FAILURE_TRIES = 3  # a record is dead-lettered only when it fails alone this many times
# A batch given up at its deadline is retried with twice the time, up to this many times the deadline: a batch that
# is only slow (a loaded machine) still ends, and a service that hangs is still given up on.
DEADLINE_STRETCH_MAX = 32
# PostgreSQL's SQLSTATEs of a server that cannot serve anyone right now, whatever the statement: connection
# exceptions (class 08) and operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
# now: starting up or shutting down). asyncpg raises them on connect, where SQLAlchemy marks no connection invalid.
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


class Output(NamedTuple):
    """One record to publish: full topic name, key, value."""

    topic: str
    key: bytes
    value: bytes


class Processor(Protocol):
    """What a stream worker runs: a consumer group, its topics, and the batch logic."""

    group_id: str
    topics: list[str]

    async def process(self, batch: Sequence[Message]) -> list[Output]: ...

    async def saved(self) -> None:
        """Called once the batch's outputs are acknowledged, before its offsets are committed."""


class Stopped(Exception):
    """The worker was asked to stop while a batch was waiting for its services."""


def transient(exc: BaseException) -> bool:
    """True for an unreachable or overloaded broker, Redis or PostgreSQL: retry; False: the record's own."""
    if isinstance(exc, DeliveryError | PoolTimeoutError | OperationalError | InterfaceError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        return bool(exc.connection_invalidated) or sqlstate.startswith(UNAVAILABLE_SQLSTATES)
    if isinstance(exc, asyncpg.PostgresError):  # asyncpg's own, from ``db.raw_pool``: a lost connection is class 08
        return str(exc.sqlstate or "").startswith(UNAVAILABLE_SQLSTATES)
    if isinstance(exc, asyncpg.InterfaceError):  # a closed connection or pool, unless the record's data was refused
        return not isinstance(exc, ValueError)
    return isinstance(exc, RedisError) and not isinstance(exc, ResponseError)


def dead_letter(group: str, msg: Message, error: BaseException, prefix: str, *, part: bytes | None = None,
                where: str | None = None) -> Output:
    """The dead-letter record of ``msg`` for ``group``; a processor that sets aside only ``part`` of a record
    (at ``where`` inside it) passes those."""
    letter = DeadLetter.of(group=group, topic=msg.topic() or "", partition=msg.partition() or 0,
                           offset=msg.offset() or 0, key=msg.key(), value=msg.value() or b"" if part is None else part,
                           error=error, at=datetime.now(UTC), where=where)
    return Output(dead_letters(group).full_name(prefix), msg.key() or b"", letter.encode())


async def set_aside(producer: AsyncProducer, group: str, msg: Message, error: BaseException, prefix: str) -> None:
    """Publish ``msg``'s dead letter for a consumer that commits on its own (dispatcher, AI worker), retrying
    until the broker acknowledges it: only then may its offset be committed."""
    letter = dead_letter(group, msg, error, prefix)
    DEAD_LETTERS.labels(group).inc()
    log.error("%s: %s[%s]@%s set aside as a dead letter: %s", group, msg.topic(), msg.partition(), msg.offset(),
              error)
    while True:
        try:
            await producer.send(letter.topic, letter.value, letter.key)
            return
        except DeliveryError as exc:
            log.error("%s: dead letter not published yet (%s); retrying", group, exc)
            await asyncio.sleep(0.5)


class StreamWorker:
    """Runs one ``Processor`` until stopped."""

    def __init__(self, processor: Processor, producer: AsyncProducer, settings: CoreSettings, *,
                 batch_size: int = 500, batch_wait_s: float = 0.1, settle_s: float = 0.0,
                 deadline_s: float | None = None, **consumer_overrides: object) -> None:
        self.processor = processor
        self.producer = producer
        self.prefix = settings.topic_prefix
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.settle_s = settle_s  # > 0: a fresh batch waits this long for the rest of its fetch (``settled``)
        self.deadline_s = deadline_s  # the longest ``process`` and ``saved`` may each take (None: no limit)
        self._stretch = 1  # the deadline's multiple for the batch being handled (doubled each time it is given up)
        self.consumer = build_consumer(settings, processor.group_id, on_commit=self._committed, **consumer_overrides)
        self.dead_lettered = 0
        letters = DEAD_LETTERS_OF.get(processor.group_id)  # the group's own dead-letter topic
        self._letters_topic = letters.full_name(self.prefix) if letters is not None else None
        self.metrics = GroupMetrics(processor.group_id)
        self._stopping = asyncio.Event()
        self._carried: list[Message] = []  # fetched while a batch waited for its services: handled next
        self._paused: set[tuple[str, int]] = set()  # paused while waiting for the services: resumed after
        self._handled: dict[tuple[str, int], int] = {}  # next offsets handled, not yet asked to commit
        self._in_flight: dict[tuple[str, int], int] | None = None  # the asynchronous commit not answered yet
        self._commit_due = 0.0  # monotonic time before which no asynchronous commit is made

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        bind(group=self.processor.group_id)  # this worker's task: every line it logs names its group
        subscribe(self.consumer, self.processor.group_id, self.processor.topics, on_revoke=self._on_revoke,
                  on_lost=self._on_lost)
        try:
            while not self._stopping.is_set():
                batch, self._carried = self._carried, []
                if not batch:
                    batch = ready(self.consumer, self.batch_size)
                if not batch:
                    self._commit_handled()  # what waited for the answer of the commit before
                    batch = await loop.run_in_executor(None, next_batch, self.consumer, self.batch_size,
                                                       self.batch_wait_s)
                if batch and self.settle_s:
                    batch = await loop.run_in_executor(None, settled, self.consumer, batch, self.batch_size,
                                                       self.settle_s)
                if batch:
                    await self._handle(batch)
        except Stopped:
            log.info("%s: stopped while waiting for its services; the batch is handled again later",
                     self.processor.group_id)
        finally:
            await loop.run_in_executor(None, self.consumer.close)

    async def _handle(self, batch: list[Message]) -> None:
        started = time.monotonic()
        parts = slices(batch)
        self.metrics.started(parts, time.time())
        try:
            await self._attempt(batch)
        except Stopped:
            raise
        except Exception as exc:
            log.warning("%s: batch of %d failed (%s: %s); handling its records one by one",
                        self.processor.group_id, len(batch), type(exc).__name__, exc)
            for msg in batch:
                await self._one(msg)
        self._handled.update((tp, part.next_offset) for tp, part in parts.items())
        self._commit_handled()
        self.metrics.finished(time.monotonic() - started)

    async def _one(self, msg: Message) -> None:
        """Handle one record alone; after ``OWN_FAILURE_TRIES`` failures of its own, dead-letter it."""
        with log_context(conversation_key=_text_key(msg)):
            await self._one_alone(msg)

    async def _one_alone(self, msg: Message) -> None:
        for attempt in range(1, OWN_FAILURE_TRIES + 1):
            try:
                await self._attempt([msg])
                return
            except Stopped:
                raise
            except Exception as exc:
                if attempt == OWN_FAILURE_TRIES:
                    log.exception("%s: %s[%s]@%s fails on its own; sent to the dead-letter topic",
                                  self.processor.group_id, msg.topic(), msg.partition(), msg.offset())
                    await self._retry_transient(partial(self._publish, dead_letter(
                        self.processor.group_id, msg, exc, self.prefix)))
                    self._commit_due = 0.0  # see _attempt
                    self.dead_lettered += 1
                    self.metrics.dead_letters.inc()

    async def _publish(self, out: Output) -> None:
        await self.producer.send(out.topic, out.value, out.key)

    async def _attempt(self, batch: list[Message]) -> None:
        async def once() -> None:
            outputs = await self._in_time(self.processor.process(batch))
            await self.producer.send_all([(o.topic, o.value, o.key) for o in outputs])
            await self._in_time(self.processor.saved())
            self._stretch = 1
            if any(o.topic == self._letters_topic for o in outputs):
                self._commit_due = 0.0  # a record set aside is committed at once: a crash rarely sets it aside twice

        await self._retry_transient(once)

    async def _in_time(self, step: Awaitable[T]) -> T:
        """``step``'s result; a ``TimeoutError`` (transient) if it takes longer than the deadline (stretched)."""
        if self.deadline_s is None:
            return await step
        limit = self.deadline_s * self._stretch
        try:
            async with asyncio.timeout(limit) as deadline:
                return await step
        except TimeoutError:
            if not deadline.expired():
                raise
            self._stretch = min(self._stretch * 2, DEADLINE_STRETCH_MAX)
            raise TimeoutError(f"{self.processor.group_id}: its services did not answer within {limit:g} s") from None

    async def _retry_transient(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step()`` until it succeeds or fails for a reason of its own; keep the group while waiting."""
        delay, paused = 0.1, False
        try:
            while True:
                try:
                    await step()
                    return
                except Exception as exc:
                    if not transient(exc):
                        raise
                    self.metrics.transient.inc()
                    log.error("%s: services unavailable, retrying in %.1fs: %s", self.processor.group_id, delay,
                              exc)
                if self._stopping.is_set():
                    raise Stopped
                paused = True
                await asyncio.get_running_loop().run_in_executor(None, self._wait_in_group, delay)
                delay = min(delay * 2, 5.0)
        finally:
            if paused:
                await asyncio.get_running_loop().run_in_executor(None, self._resume)

    def _wait_in_group(self, seconds: float) -> None:
        """Poll with every partition paused (the group sees a live member); keep what arrives anyway."""
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)
            self._paused.update((tp.topic, tp.partition) for tp in assignment)
        msg = self.consumer.poll(seconds)  # serves rebalances; newly assigned partitions are not paused
        if msg is not None and not msg.error():
            self._carried.append(msg)
            self._carried.extend(m for m in self.consumer.consume(self.batch_size, 0) if not m.error())

    def _resume(self) -> None:
        """Resume what is assigned now and everything paused before: a partition paused, revoked by a rebalance
        during the wait and assigned again later keeps its pause in the client, and would never be fetched again."""
        assignment: list[TopicPartition] = self.consumer.assignment()
        wanted = {(tp.topic, tp.partition) for tp in assignment} | self._paused
        self._paused = set()
        if wanted:
            self.consumer.resume([TopicPartition(topic, partition) for topic, partition in sorted(wanted)])

    def _on_revoke(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        """On the polling thread (a rebalance, or ``close``): commit what was handled of the partitions, then let
        them go (see the module's docstring)."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        offsets = {tp: offset for tp, offset in (*(self._in_flight or {}).items(), *self._handled.items())
                   if tp in gone}
        if offsets:
            self._commit_now(offsets)
        self._forget(gone)

    def _on_lost(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        """Partitions lost with the session may have another owner already: let them go without a commit."""
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _forget(self, gone: set[tuple[str, int]]) -> None:
        """Partitions given to another member are no longer this one's offsets to commit, lag to report, nor (for a
        processor with a ``revoked()`` method) state to keep in memory."""
        self._handled = {tp: offset for tp, offset in self._handled.items() if tp not in gone}
        if self._in_flight:
            self._in_flight = {tp: offset for tp, offset in self._in_flight.items() if tp not in gone}
        self.metrics.forget(list(gone))
        revoked = getattr(self.processor, "revoked", None)
        if revoked is not None:
            revoked()

    def _commit_handled(self) -> None:
        """Ask for the commit of every offset handled so far, unless a commit is in flight (its answer lets the
        next one go) or the last one is too recent; never blocks: librdkafka sends it from its own thread."""
        if self._in_flight is not None or not self._handled:
            return
        now = time.monotonic()
        if now < self._commit_due:
            return
        self._commit_due = now + COMMIT_EVERY_S
        offsets, self._handled = self._handled, {}
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                 asynchronous=True)
        except KafkaException as exc:
            self._refused(str(exc))
            return
        self._in_flight = offsets

    def _committed(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The answer of an asynchronous commit (served by a poll of this worker's consumer)."""
        offsets, self._in_flight = self._in_flight or {}, None
        problem = refused(error, partitions)
        if problem:
            self._refused(problem)
            return
        self.metrics.commits_ok.inc()
        self.metrics.lag(self.consumer, offsets)

    def _commit_now(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit synchronously (on a revoke), then record the partitions' lag."""
        try:
            commit(self.consumer, offsets)
        except CommitError as exc:
            self._refused(str(exc))
            return
        self.metrics.commits_ok.inc()
        self.metrics.lag(self.consumer, offsets)

    def _refused(self, problem: str) -> None:
        """Partitions moved meanwhile (or the broker is away): their next owner handles the records again."""
        self.metrics.commits_refused.inc()
        log.warning("%s: offset commit failed, the records will be handled again: %s", self.processor.group_id,
                    problem)


def _text_key(msg: Message) -> str | None:
    """A record's key as text for the log context (keys are conversation keys, ids or numbers)."""
    key = msg.key()
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else key
