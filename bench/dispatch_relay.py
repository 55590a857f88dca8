"""The dispatcher's hop done bare, for ``aerostic bench dispatch``: what its transport alone sends a second.

The bench's ceiling is a bare client loop: Graph calls and nothing else. The dispatcher also reads each request from
Kafka and publishes each result back to it, on the same two cores as the broker and the simulator. This relay does
that and nothing more: a confluent-kafka consumer reads queued requests from a topic with the outbound lanes'
partitions, workers take them (``bench dispatch``: 256), each makes the request's Graph call with the dispatcher's
client (an ``aiohttp.ClientSession`` on uvloop, at most ``connections`` on the wire: 32), publishes a small result keyed
as the request with the dispatcher's producer (``AsyncProducer``, acknowledged) and the consumer commits at most every
``COMMIT_EVERY_S``. No validation, no idempotency record, no rate slot, no scheduling: the dispatcher's sends a
second over the relay's (``relay_ratio``) is how close it gets to its transport's floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import aiohttp
import uvloop

from bench.relay import Commits, hop_consumer, take
from broker.producer import AsyncProducer

BATCH = 500  # records a fetch hands over at most, as the dispatcher's consumer
QUEUED_MAX = 2_000  # records read ahead of the workers at most


def result_of(request: dict[str, Any]) -> bytes:
    """The result the relay publishes for a request: its message id and an outcome."""
    return json.dumps({"message_id": request["message_id"], "outcome": "accepted"}).encode()


async def _relay(bootstrap: str, source: str, target: str, url: str, token: str, count: int, *, workers: int,
                 connections: int, fetch_wait_ms: int, stop_at: float) -> int:
    """Relay ``count`` requests (or until ``stop_at``, monotonic); how many calls were answered."""
    consumer = hop_consumer(bootstrap, f"bench-relay-{uuid.uuid4().hex}", fetch_wait_ms)
    consumer.subscribe([source])
    queue: asyncio.Queue[tuple[bytes, bytes | None]] = asyncio.Queue(QUEUED_MAX)
    headers = {"Authorization": f"Bearer {token}"}
    calls = asyncio.Semaphore(connections)  # as the dispatcher's call gate: the pool never queues
    answered = 0
    read = 0
    commits = Commits()

    async def reader() -> None:
        nonlocal read
        while read < count and time.monotonic() < stop_at:
            for msg in await asyncio.to_thread(take, consumer, BATCH):
                await queue.put((msg.value() or b"", msg.key()))
                read += 1
            commits.due(consumer)

    async def worker(session: aiohttp.ClientSession, producer: AsyncProducer) -> None:
        nonlocal answered
        while True:
            body, key = await queue.get()
            request = json.loads(body)
            async with calls:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.post(url, headers=headers, json={
                            "messaging_product": "whatsapp", "to": request["to"], **request["message"]}) as response:
                        await response.read()
                        answered += 1
            await producer.send(target, result_of(request), key)
            queue.task_done()

    connector = aiohttp.TCPConnector(limit=connections)
    try:
        async with AsyncProducer(bootstrap) as producer, aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=15.0)) as session:
            tasks = [asyncio.create_task(worker(session, producer)) for _ in range(workers)]
            try:
                await reader()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.join(), max(stop_at - time.monotonic(), 1.0))
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        consumer.close()
    return answered


def relay(bootstrap: str, source: str, target: str, url: str, token: str, count: int, *, workers: int,
          connections: int, fetch_wait_ms: int, max_s: float) -> tuple[int, float]:
    """Relay ``count`` queued requests from ``source`` on uvloop, for at most ``max_s``; the calls answered and the
    CPU seconds the relay's process spent meanwhile (its loop, the consumer's and the producer's threads)."""
    cpu = time.process_time()
    answered = uvloop.run(_relay(bootstrap, source, target, url, token, count, workers=workers,
                                 connections=connections, fetch_wait_ms=fetch_wait_ms,
                                 stop_at=time.monotonic() + max_s))
    return answered, time.process_time() - cpu
