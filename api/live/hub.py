"""The feed's one Kafka consumer per web process, and the hub that fans its events out to the browsers.

A thread reads the feed's topics (``api.live.events.TOPICS``) with partitions assigned directly (no group,
nothing committed) and a fetch wait of ``live_fetch_wait_ms`` (the embedded broker does not wake a waiting
fetch when data arrives, so the wait bounds the latency, and it is the feed's idle cost at the broker). It
decodes each record once, serialises its event once, and hands what it read to the event loop at most every
``HAND_OVER_S`` in one ``call_soon_threadsafe``; the loop keeps the ring of recent entries and queues each for
its tenant's browsers, ``SLICE`` streams per loop iteration (in feed order, heartbeats included), so that the
webhook requests the same loop serves are read between slices rather than after hundreds of streams.

Finding "now": the broker's ListOffsets can report an end far below the real one (measured on Tansu: a
partition of 1,326 records answered 1,285, and ``offsets_for_times`` answered one record early, or 0 for a
time past the end), so the consumer starts at the reported end and reads on until every partition has
reported end-of-partition (fetch responses are right). Records read before that are only positioning:
they are not fanned out and the ring's floor starts past them. Streams are accepted once the feed is there.

The hub starts with the first stream, and stops with the web process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, Message, TopicPartition

from api.live.cursor import Layout
from api.live.events import TOPICS, decode
from api.live.fanout import Client, Entry, Ping, Ring, fan_out
from broker.consumer import reader_config
from config.settings import IngressSettings

log = logging.getLogger(__name__)

BATCH = 500
POLL_S = 0.2
HAND_OVER_S = 0.05
SLICE = 32  # streams served per event-loop iteration: the webhook path's I/O is polled between slices
MAX_BACKLOG = 10_000  # deliveries waiting for their slices; past it the loop is starved: every stream is cut
HEARTBEAT_S = 15.0
READY_TIMEOUT_S = 20.0
METADATA_TIMEOUT_S = 10.0


class LiveFull(Exception):
    """No room for another stream: ``status`` 503 (this process) or 429 (this tenant)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def event_at(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")


def payload(type_: str, at: str, conversation_key: str | None, data: dict[str, object]) -> bytes:
    """The event's JSON without its id (``api.live.fanout.frame`` adds it)."""
    return orjson.dumps({"type": type_, "at": at, "conversation_key": conversation_key, "data": data})


class Decoder:
    """Records → entries, for the feed's consumer and for a resume's gap reader (cheap: see api.live.events)."""

    def __init__(self, layout: Layout, prefix: str) -> None:
        self.layout, self.prefix = layout, prefix

    def slot(self, msg: Message) -> int:
        return self.layout.index[((msg.topic() or "").removeprefix(self.prefix), msg.partition() or 0)]

    def entry(self, msg: Message, slot: int, vector: tuple[int, ...]) -> Entry | None:
        event = decode(self.layout.slots[slot][0], msg.key(), msg.value())
        if event is None:
            return None
        _, stamp = msg.timestamp()
        body = payload(event.type, event_at(stamp if stamp > 0 else int(time.time() * 1000)),
                       event.conversation_key, event.data)
        return Entry.build(slot, msg.offset() or 0, event.tenant_id, event.type, vector, self.layout.encode(vector),
                           body)


def feed_layout(consumer: Consumer, prefix: str) -> Layout:
    """The feed's partitions as the broker has them (every topic must exist)."""
    names = {prefix + topic: topic for topic in TOPICS}
    topics = consumer.list_topics(timeout=METADATA_TIMEOUT_S).topics
    missing = [name for name in names if name not in topics or not topics[name].partitions]
    if missing:
        raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"missing topics {missing}"))
    return Layout.of({names[name]: len(topics[name].partitions) for name in names})


@dataclass(slots=True)
class _Delivery:
    """Entries (or a heartbeat) being offered to streams, a slice at a time."""

    items: list[Entry] | Ping
    clients: list[Client]
    served: int = 0


class LiveHub:
    """The web process's feed: one consumer thread, the ring, the open streams."""

    def __init__(self, settings: IngressSettings) -> None:
        self.settings = settings
        self.prefix = settings.topic_prefix
        self.layout: Layout | None = None
        self.position: tuple[int, ...] = ()
        self.ring: Ring | None = None
        self.ready = asyncio.Event()
        self.clients: dict[str, set[Client]] = {}
        self.count = 0
        self.gap_reads = asyncio.Semaphore(2)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._heartbeat: asyncio.Task[None] | None = None
        self.failure: str | None = None
        # Deliveries in feed order: (entries or a heartbeat, the streams to offer them to, how many were served).
        self._backlog: deque[_Delivery] = deque()
        self._stepping = False

    # --- lifecycle -----------------------------------------------------------------------------

    async def started(self) -> bool:
        """Start the feed on first use; True once it is at the end of every partition (False: not in time)."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._running = True
            self._thread = threading.Thread(target=self._consume, name="live-feed", daemon=True)
            self._thread.start()
            self._heartbeat = asyncio.create_task(self._beat())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), READY_TIMEOUT_S)
        return self.ready.is_set()

    async def stop(self) -> None:
        self._running = False
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for tenant in list(self.clients.values()):
            for client in tenant:
                client.close("the server is stopping")
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5.0)

    # --- streams ---------------------------------------------------------------------------------

    def register(self, tenant_id: str, role: str, start: tuple[int, ...] | None) -> Client:
        """A new stream from ``start`` (None: from now); ``LiveFull`` past the caps."""
        assert self.layout is not None
        if self.count >= self.settings.live_max_connections:
            raise LiveFull(503, "too many live streams on this server; retry shortly")
        tenant = self.clients.setdefault(tenant_id, set())
        if len(tenant) >= self.settings.live_max_per_tenant:
            raise LiveFull(429, f"at most {self.settings.live_max_per_tenant} live streams per tenant")
        client = Client(self.layout, tenant_id, role, start if start is not None else self.position,
                        self.settings.live_queue_events)
        tenant.add(client)
        self.count += 1
        return client

    def unregister(self, client: Client) -> None:
        tenant = self.clients.get(client.tenant_id)
        if tenant is not None and client in tenant:
            tenant.discard(client)
            self.count -= 1
            if not tenant:
                del self.clients[client.tenant_id]

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self._deliver(Ping(self.position), [c for tenant in self.clients.values() for c in tenant])

    # --- the consumer thread -----------------------------------------------------------------------

    def _consume(self) -> None:
        while self._running:
            consumer = Consumer(reader_config(self.settings, enable_partition_eof=True,
                                              fetch_wait_max_ms=self.settings.live_fetch_wait_ms))
            try:
                self._read(consumer)
            except KafkaException as exc:
                self.failure = str(exc)
                log.warning("live feed: %s; retrying", exc)
                time.sleep(1.0)
            finally:
                consumer.close()

    def _read(self, consumer: Consumer) -> None:
        layout = self.layout or feed_layout(consumer, self.prefix)
        decoder = Decoder(layout, self.prefix)
        # Once running, a new consumer (the broker came back) resumes where the feed is; at first, at the end.
        known = self.ready.is_set()
        positions = list(self.position) if known else [-1] * len(layout.slots)
        consumer.assign([TopicPartition(self.prefix + topic, p, positions[i] if known else OFFSET_END)
                         for i, (topic, p) in enumerate(layout.slots)])
        at_end: set[int] = set(range(len(layout.slots))) if known else set()
        if not known:
            self.layout = layout
        pending: list[Entry] = []
        moved = False  # positions advanced since the last hand-over
        handed = time.monotonic()
        while self._running:
            wait = max(0.0, handed + HAND_OVER_S - time.monotonic()) if known and moved else POLL_S
            first = consumer.poll(wait)
            batch = [first, *consumer.consume(BATCH - 1, 0)] if first is not None else []
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        slot = decoder.slot(msg)
                        positions[slot] = max(positions[slot], msg.offset() or 0)
                        at_end.add(slot)
                    else:
                        log.warning("live feed: %s", err)
                    continue
                slot = decoder.slot(msg)
                positions[slot] = (msg.offset() or 0) + 1
                moved = True
                if known:
                    entry = decoder.entry(msg, slot, tuple(positions))
                    if entry is not None:
                        pending.append(entry)
            if not known and len(at_end) == len(layout.slots):
                known = moved = True
            # One hand-over per HAND_OVER_S at most: each wakes every stream that has something, so fewer,
            # fuller batches cost the web process (and its webhook path) less for a few ms of latency.
            if known and moved and time.monotonic() - handed >= HAND_OVER_S:
                self._hand_over(pending, tuple(positions))
                pending, moved, handed = [], False, time.monotonic()

    def _hand_over(self, entries: list[Entry], position: tuple[int, ...]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._apply, entries, position)

    # --- on the event loop -------------------------------------------------------------------------

    def _apply(self, entries: list[Entry], position: tuple[int, ...]) -> None:
        if self.ring is None:
            self.ring = Ring(self.settings.live_ring_events, position)
        for entry in entries:
            self.ring.append(entry)
        self.position = position
        tenants = {entry.tenant_id for entry in entries}
        self._deliver(entries, [c for tenant in tenants for c in self.clients.get(tenant, ())])
        if not self.ready.is_set():
            self.ready.set()

    def _deliver(self, items: list[Entry] | Ping, clients: list[Client]) -> None:
        """Offer ``items`` to ``clients`` after everything offered before, a slice per loop iteration: a burst
        for hundreds of streams never holds the webhook requests waiting behind it."""
        if not clients:
            return
        if len(self._backlog) >= MAX_BACKLOG:
            log.warning("live feed: the event loop cannot keep up; cutting every stream (they resume)")
            self._backlog.clear()
            for tenant in list(self.clients.values()):
                for client in list(tenant):
                    client.close("the server is overloaded")
                    self.unregister(client)
            return
        self._backlog.append(_Delivery(items, clients))
        if not self._stepping:
            self._stepping = True
            self._step()

    def _step(self) -> None:
        budget = SLICE
        while self._backlog and budget > 0:
            job = self._backlog[0]
            chunk = job.clients[job.served:job.served + budget]
            for client in fan_out(job.items, chunk):
                self.unregister(client)
            budget -= len(chunk)
            job.served += len(chunk)
            if job.served >= len(job.clients):
                self._backlog.popleft()
        if self._backlog:
            asyncio.get_running_loop().call_soon(self._step)
        else:
            self._stepping = False
