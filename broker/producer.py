"""An asyncio face for confluent-kafka's producer with batched delivery reports.

By default one background thread polls librdkafka; delivery reports are collected per poll and handed to the event
loop in one ``call_soon_threadsafe`` call, so thousands of in-flight appends cost one loop wake-up per poll rather than
one each. With ``poll_in_loop`` the event loop polls instead, every ``POLL_S`` while appends wait for their reports
and every ``IDLE_POLL_S`` otherwise: for a process whose loop is always busy with appends (the web process taking
Meta's webhooks), where the thread had to take the GIL for each report from a loop that held it. Each of the loop's
polls costs about 24 µs of CPU, so in a process that waits for its appends now and then (the stream workers, the
dispatcher) the thread is cheaper. A report that never comes is failed by one sweeper task (not a timer per append:
``asyncio.wait_for`` costs a task per call).

``max_message_bytes`` bounds one record (librdkafka's ``message.max.bytes``, which refuses a larger one
before it leaves): by default the largest any catalogued topic accepts; the ingress passes its body limit
plus headroom.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from broker.metrics import PRODUCE_ERRORS, PRODUCED
from schemas.catalogue import MAX_RECORD_BYTES

log = logging.getLogger(__name__)


REPLACE_AFTER_FAILURES = 3
POLL_S = 0.001  # ``poll_in_loop``, while appends wait: a report waits at most this long for the loop
BUSY_POLL_S = 0.0005  # ... while at least ``BUSY_APPENDS`` wait
BUSY_APPENDS = 32
# Each poll wakes the loop (about 24 µs of CPU; the poll itself 0.3 µs), shared by the reports it finds. With 64
# webhooks in flight the reports' wait set the web process's rate (``bench ingress``, session 56: 0.47-0.55 of bare
# uvicorn at 0.5 ms against 0.42-0.48 at 1 ms); at 0.5 ms whenever an append waited, the web process spent 2.6 ms of
# CPU a question at 40 questions a second (``bench e2e``) against 0.6.
IDLE_POLL_S = 0.5  # ``poll_in_loop``, otherwise: for librdkafka's errors (a fatal one replaces the producer)
PURGED = (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)
Reports = list[tuple[asyncio.Future[None], KafkaError | None]]  # delivery reports: each append's future, its error


class DeliveryError(Exception):
    """The broker did not acknowledge the record (unreachable, timed out, or refused)."""


class AsyncProducer:
    """Produce with ``await send(...)``: returns once the broker acknowledged (``acks=all``)."""

    def __init__(self, bootstrap: str, *, delivery_timeout_ms: int = 5000, linger_ms: int = 2,
                 max_message_bytes: int = MAX_RECORD_BYTES, extra: dict[str, Any] | None = None,
                 poll_in_loop: bool = False) -> None:
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "message.max.bytes": max_message_bytes,
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "message.timeout.ms": delivery_timeout_ms,
            "socket.keepalive.enable": True,
            "reconnect.backoff.max.ms": 1000,
            "log_level": 3,
            **(extra or {}),
        }
        self._producer: Producer | None = None
        self._failures_in_row = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll_in_loop = poll_in_loop
        self._thread: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_idle = False  # the loop's poll timer is armed for IDLE_POLL_S: an append re-arms it
        # An append after a rest is acknowledged no sooner than the linger (unless its partition's batch fills): polling
        # every POLL_S before that cost the web process 0.1-0.2 ms of CPU a question at 40 questions a second.
        self._first_poll_s = max(POLL_S, linger_ms / 1000)
        self._running = False
        self._done: Reports = []
        self._pending: dict[asyncio.Future[None], float] = {}
        self._wait_limit = delivery_timeout_ms / 1000 + 5.0
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = Producer(self._config)
        self._running = True
        if self._poll_in_loop:
            self._arm(IDLE_POLL_S)
        else:
            self._thread = threading.Thread(target=self._poll_forever, name="kafka-producer-poll", daemon=True)
            self._thread.start()
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def __aenter__(self) -> AsyncProducer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def stop(self, flush_seconds: float = 10.0) -> None:
        if self._producer is None:
            return
        producer = self._producer
        await asyncio.get_running_loop().run_in_executor(None, producer.flush, flush_seconds)
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._running = False
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5.0)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._poll(0, self._resolve)  # the reports the flush served, and any left
        self._producer = None

    async def send(self, topic: str, value: bytes, key: str | bytes | None = None) -> None:
        """Append one record and wait for the broker's acknowledgement."""
        await self.append(topic, value, key)

    def append(self, topic: str, value: bytes, key: str | bytes | None = None) -> asyncio.Future[None]:
        """Append one record; the future is done when the broker acknowledged it (``DeliveryError`` otherwise).

        ``send`` without its coroutine frame, for the webhook's hot path: awaiting the future itself saves a frame
        on every resumption. The future is forgotten (``_pending``) when its report or its deadline settles it.
        """
        assert self._producer is not None and self._loop is not None, "producer not started"
        future: asyncio.Future[None] = self._loop.create_future()
        try:
            self._producer.produce(topic, value, key, on_delivery=self._reporter(future))
        except BufferError as exc:
            PRODUCE_ERRORS.inc()
            raise DeliveryError("local produce queue is full") from exc
        except KafkaException as exc:
            PRODUCE_ERRORS.inc()
            raise DeliveryError(str(exc)) from exc
        self._pending[future] = self._loop.time() + self._wait_limit
        self._appended()
        return future

    async def send_all(self, records: Iterable[tuple[str, bytes, str | bytes | None]]) -> None:
        """Append ``(topic, value, key)`` records in one loop and wait until the broker acknowledged them all.

        One future per record, no task per record (``send`` in a ``gather`` costs a task each); the first
        failure is raised once every record has its outcome.
        """
        futures: list[asyncio.Future[None]] = []
        try:
            for topic, value, key in records:
                futures.append(self.append(topic, value, key))
        except DeliveryError:
            await self._settle(futures)
            raise
        await self._settle(futures, raise_first=True)

    def _reporter(self, future: asyncio.Future[None]) -> Callable[[KafkaError | None, Any], None]:
        """The delivery callback of one record: its outcome joins the poll's reports (see ``_poll``)."""
        return lambda err, _msg: self._done.append((future, err))

    async def _settle(self, futures: list[asyncio.Future[None]], *, raise_first: bool = False) -> None:
        """Wait for every one of ``futures`` (acknowledged, failed or overdue: each is then already forgotten)."""
        outcomes = await asyncio.gather(*futures, return_exceptions=True) if futures else []
        if raise_first:
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _sweep_forever(self) -> None:
        """Fail the appends whose delivery report is overdue (librdkafka normally reports them itself)."""
        assert self._loop is not None
        while True:
            await asyncio.sleep(0.25)
            now = self._loop.time()
            for future, deadline in list(self._pending.items()):
                if deadline < now:
                    del self._pending[future]
                    if not future.done():
                        future.set_exception(DeliveryError("no delivery report in time"))

    def _poll_forever(self) -> None:
        """The polling thread (unless ``poll_in_loop``)."""
        assert self._loop is not None
        loop = self._loop

        def resolve(batch: Reports) -> None:
            loop.call_soon_threadsafe(self._resolve, batch)

        while self._running and self._producer is not None:
            self._poll(0.05, resolve)

    def _appended(self) -> None:
        """Appends wait for reports: a loop resting at ``IDLE_POLL_S`` polls once their linger has passed."""
        if self._timer_idle:
            self._arm(self._first_poll_s)

    def _arm(self, delay_s: float) -> None:
        """(Re)arm the loop's poll timer."""
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer_idle = delay_s >= IDLE_POLL_S
        self._timer = self._loop.call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._poll(0, self._resolve)
        if self._running:
            waiting = len(self._pending)
            self._arm(IDLE_POLL_S if not waiting else BUSY_POLL_S if waiting >= BUSY_APPENDS else POLL_S)

    def _poll(self, timeout_s: float, resolve: Callable[[Reports], object]) -> None:
        """Serve librdkafka's callbacks, then hand the reports they collected (those a flush served in another thread
        included) to ``resolve`` (on the event loop) and count them."""
        if self._producer is not None:
            try:
                self._producer.poll(timeout_s)
            except KafkaException as exc:
                self._replace_after_fatal(exc)
        if self._done:
            batch, self._done = self._done, []
            resolve(batch)
            self._watch_failures(batch)

    def _watch_failures(self, batch: Reports) -> None:
        """Count the poll's reports (one update per poll, not per record), and replace a producer whose appends
        keep failing: a broker that lost its state (a restarted in-memory broker answers UNKNOWN_PRODUCER_ID
        forever) never gives the old producer id back, and librdkafka does not always call that fatal. A new
        producer gets a new id; a failure streak costs one replacement."""
        failed = 0
        for _, err in batch:
            if err is None:
                self._failures_in_row = 0
                continue
            failed += 1
            if err.code() in PURGED:
                continue  # a replaced producer's leftovers, already failed
            self._failures_in_row += 1
        PRODUCED.inc(len(batch) - failed)
        if failed:
            PRODUCE_ERRORS.inc(failed)
        if self._failures_in_row >= REPLACE_AFTER_FAILURES:
            self._failures_in_row = 0
            self._replace_after_fatal(KafkaException(KafkaError(KafkaError._FATAL,
                                                                f"{REPLACE_AFTER_FAILURES} appends failed in a row")))

    def _replace_after_fatal(self, exc: KafkaException) -> None:
        """A fatal producer error (e.g. the broker forgot our producer id) needs a new producer.

        Records in flight have an unknown outcome: their senders get ``DeliveryError`` (so Meta
        retries); a record that did land is then a duplicate, which the router absorbs.
        """
        log.error("producer failed fatally, replacing it: %s", exc)
        old, self._producer = self._producer, Producer(self._config)
        if old is not None:
            with contextlib.suppress(KafkaException):
                old.purge(in_queue=True, in_flight=True)
                old.flush(0)  # serves the purge reports (not counted as failures), so the old producer is freed
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._fail_pending, str(exc))

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending:
            if not future.done():
                future.set_exception(DeliveryError(reason))

    def _resolve(self, batch: Reports) -> None:
        """Settle each report's future (on the loop) and forget it."""
        pending = self._pending
        for future, err in batch:
            pending.pop(future, None)
            if future.done():
                continue
            if err is None:
                future.set_result(None)
            else:
                future.set_exception(DeliveryError(str(err)))
