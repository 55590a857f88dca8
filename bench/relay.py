"""The bare relay that ``aerostic bench e2e`` compares the pipeline with: the same hops, doing nothing but forward.

The pipeline's question → answer path crosses five topics (``wa.webhooks.raw`` → ``wa.inbound`` →
``ai.requests`` → ``ai.decisions`` → ``outbound.interactive``) between the ingress and the dispatcher's Graph
call. The relay has the same shape on the same broker, each hop its own process:

- ``ingress``: uvicorn + a bare ASGI app that appends the webhook body to ``relay.0`` keyed by the phone number id
  and answers 200 once the broker acknowledged it (the ingress's durable append, without signature check or parsing);
- ``forward`` (one per hop): a plain confluent-kafka consumer and producer copying ``relay.i`` to ``relay.i+1``
  and committing (at most every ``COMMIT_EVERY_S``, as the pipeline's groups); the first keys each record by its
  customer (the router keys by conversation), the others keep the key. The topics get the pipeline's partitions on
  the same broker (two on a stack's embedded one), so each hop is partitioned as the pipeline's;
- ``send``: consumes the last topic and makes the Graph call (``POST /{phone_number_id}/messages``) to the
  customer named in the webhook, with the dispatcher's client for sends (an ``aiohttp.ClientSession`` on uvloop,
  32 connections: the dispatcher's gate at a few hundred calls a second).

Each hop rests on ``SIGUSR1`` (its partitions paused: it sends the broker no fetch) and wakes on ``SIGUSR2``
(``Resting``): ``aerostic bench e2e`` rests the relay while the pipeline steps, so the relay's idle consumers do not
load the broker the pipeline is measured on.

Run as ``python -m bench.relay <role> …``; ``RelayChain`` starts and stops the whole chain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import uvloop
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from broker.consumer import COMMIT_EVERY_S
from config.settings import CoreSettings

TOPICS = 5  # as many topics as the pipeline's question → answer path
PARTITIONS = 6  # as the catalogue's topics on that path (a stack's embedded broker caps them: ``partitions``)
GRAPH_VERSION = "v23.0"


def topic(prefix: str, index: int) -> str:
    return f"{prefix}relay.{index}"


def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Topics of a bare relay on the broker, ``partitions`` each (idempotent)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=30).topics)
    wanted = [NewTopic(name, partitions, 1) for name in names if name not in existing]
    for future in admin.create_topics(wanted, operation_timeout=30).values() if wanted else ():
        future.result(timeout=30)


def create_relay_topics(bootstrap: str, prefix: str, partitions: int = PARTITIONS) -> None:
    """The relay's topics on the broker (idempotent), with as many partitions as the pipeline's topics there."""
    create_topics(bootstrap, [topic(prefix, i) for i in range(TOPICS)], partitions)


def hop_consumer(bootstrap: str, group: str, fetch_wait_ms: int) -> Consumer:
    """Fetching with the reply path's wait (``kafka_fetch_wait_ms``): the same idle cost and latency."""
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "fetch.wait.max.ms": fetch_wait_ms, "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 1000, "log_level": 3})


def _producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "log_level": 3})


def take(consumer: Consumer, max_records: int = 500, wait_s: float = 0.1) -> list[Any]:
    """Wait up to ``wait_s`` for the first record only, then take what is already fetched (``consume(n, t)``
    alone would hold a lone record for the whole ``t`` at every hop)."""
    first = consumer.poll(wait_s)
    if first is None:
        return []
    return [msg for msg in [first, *consumer.consume(max_records - 1, 0)] if not msg.error()]


class Resting:
    """Whether a hop rests (``SIGUSR1``) or works (``SIGUSR2``); ``take`` applies it in the thread that polls."""

    def __init__(self) -> None:
        self.wanted = False
        self.applied = False

    def rest(self, resting: bool) -> None:
        self.wanted = resting

    def install(self) -> None:
        """Signal handlers (a thread-based hop; an asyncio one adds them to its loop with ``rest``)."""
        signal.signal(signal.SIGUSR1, lambda *_: self.rest(True))
        signal.signal(signal.SIGUSR2, lambda *_: self.rest(False))

    def take(self, consumer: Consumer) -> list[Any]:
        """``take``, after pausing or resuming every assigned partition if the wish changed: a paused partition is
        not fetched, so a resting hop costs the broker only its heartbeats."""
        wanted = self.wanted  # once: a signal between here and the end is applied by the next take, not lost
        if wanted:
            consumer.pause(consumer.assignment())  # each time: a partition assigned meanwhile rests too
        elif self.applied:
            consumer.resume(consumer.assignment())
        self.applied = wanted
        return take(consumer)


def customer_of(body: bytes) -> str:
    """The customer (``from``) of a Meta messages webhook."""
    value = json.loads(body)["entry"][0]["changes"][0]["value"]
    return str(value["messages"][0]["from"])


class Commits:
    """A hop commits what it forwarded at most every ``COMMIT_EVERY_S``, as the pipeline's groups do."""

    def __init__(self) -> None:
        self.last = 0.0

    def due(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if now - self.last < COMMIT_EVERY_S:
            return
        self.last = now
        try:
            consumer.commit(asynchronous=True)
        except KafkaException:
            pass  # nothing to commit after a rebalance: the next batch commits


def forward_key(source: int) -> Callable[[Any], str | bytes | None]:
    """The key a hop forwards a record with: the first keys by the customer, as the router keys a message by its
    conversation; the others keep the record's key."""
    if source == 0:
        return lambda msg: customer_of(msg.value() or b"")
    return lambda msg: msg.key()


def run_ingress(bootstrap: str, prefix: str, port: int, key: str | None = None) -> None:
    """``key``: the record key of every webhook (the ingress keys each by its phone number id)."""
    import uvicorn

    producer = _producer(bootstrap)
    first = topic(prefix, 0)
    stopping = threading.Event()

    def poll() -> None:
        while not stopping.is_set():
            producer.poll(0.05)

    threading.Thread(target=poll, name="relay-producer-poll", daemon=True).start()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[bool] = loop.create_future()

        def settle(ok: bool) -> None:
            if not acked.done():
                acked.set_result(ok)

        def delivered(err: Any, _msg: Any) -> None:
            loop.call_soon_threadsafe(settle, err is None)

        producer.produce(first, body, key, on_delivery=delivered)
        status = 200 if await acked else 503
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})

    try:
        uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning",
                    access_log=False)
    finally:
        stopping.set()
        producer.flush(5)


def run_forward(bootstrap: str, prefix: str, source: int, fetch_wait_ms: int) -> None:
    consumer = hop_consumer(bootstrap, f"{prefix}relay-forward-{source}", fetch_wait_ms)
    producer = _producer(bootstrap)
    consumer.subscribe([topic(prefix, source)])
    target = topic(prefix, source + 1)
    key_of = forward_key(source)
    commits = Commits()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    resting = Resting()
    resting.install()
    try:
        while not stop.is_set():
            records = resting.take(consumer)
            if not records:
                continue
            for msg in records:
                key = key_of(msg)  # once, not on each retry of a full queue
                while True:
                    try:
                        producer.produce(target, msg.value(), key)
                        break
                    except BufferError:
                        producer.poll(0.01)
            producer.flush(30)
            commits.due(consumer)
    finally:
        consumer.close()


async def _send(bootstrap: str, prefix: str, graph_url: str, phone_number_id: str, token: str,
                fetch_wait_ms: int) -> None:
    consumer = hop_consumer(bootstrap, f"{prefix}relay-send", fetch_wait_ms)
    consumer.subscribe([topic(prefix, TOPICS - 1)])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    resting = Resting()
    loop.add_signal_handler(signal.SIGUSR1, resting.rest, True)
    loop.add_signal_handler(signal.SIGUSR2, resting.rest, False)
    url = f"{graph_url.rstrip('/')}/{GRAPH_VERSION}/{phone_number_id}/messages"
    headers = {"Authorization": f"Bearer {token}"}
    commits = Commits()
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=15.0)) as client:

        async def call(body: bytes) -> None:
            try:
                async with client.post(url, headers=headers, json={
                        "messaging_product": "whatsapp", "to": customer_of(body), "type": "text",
                        "text": {"body": "relayed"}}) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, IndexError):
                pass  # the bench counts what reached the simulator; a failed call shows up as lost

        try:
            while not stop.is_set():
                batch = await asyncio.to_thread(resting.take, consumer)
                records = [value for msg in batch if (value := msg.value()) is not None]
                if records:
                    await asyncio.gather(*(call(body) for body in records))
                    commits.due(consumer)
        finally:
            consumer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay")
    parser.add_argument("role", choices=["ingress", "forward", "send"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--source", type=int, default=0)
    parser.add_argument("--graph-url", default="")
    parser.add_argument("--phone-number-id", default="")
    parser.add_argument("--token", default="")
    parser.add_argument("--fetch-wait-ms", type=int, default=CoreSettings().kafka_fetch_wait_ms)
    args = parser.parse_args(argv)
    if args.role == "ingress":
        run_ingress(args.bootstrap, args.prefix, args.port, args.phone_number_id or None)
    elif args.role == "forward":
        run_forward(args.bootstrap, args.prefix, args.source, args.fetch_wait_ms)
    else:
        uvloop.run(_send(args.bootstrap, args.prefix, args.graph_url, args.phone_number_id, args.token,
                         args.fetch_wait_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
