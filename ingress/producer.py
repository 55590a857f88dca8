"""An asyncio face for confluent-kafka's producer with batched delivery reports.

One background thread polls librdkafka; delivery reports are collected per poll and handed
to the event loop in one ``call_soon_threadsafe`` call, so thousands of in-flight appends
cost one loop wake-up per poll rather than one each.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, Producer

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The broker did not acknowledge the record (unreachable, timed out, or refused)."""


class AsyncProducer:
    """Produce with ``await send(...)``: returns once the broker acknowledged (``acks=all``)."""

    def __init__(self, bootstrap: str, *, delivery_timeout_ms: int = 5000, linger_ms: int = 2,
                 extra: dict[str, Any] | None = None) -> None:
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "message.timeout.ms": delivery_timeout_ms,
            "socket.keepalive.enable": True,
            "reconnect.backoff.max.ms": 1000,
            "log_level": 3,
            **(extra or {}),
        }
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._done: list[tuple[asyncio.Future[None], KafkaError | None]] = []

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = Producer(self._config)
        self._running = True
        self._thread = threading.Thread(target=self._poll_forever, name="kafka-producer-poll", daemon=True)
        self._thread.start()

    async def stop(self, timeout: float = 10.0) -> None:
        if self._producer is None:
            return
        producer = self._producer
        await asyncio.get_running_loop().run_in_executor(None, producer.flush, timeout)
        self._running = False
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5.0)
        self._producer = None

    async def send(self, topic: str, value: bytes, key: str | bytes | None = None) -> None:
        """Append one record and wait for the broker's acknowledgement."""
        assert self._producer is not None and self._loop is not None, "producer not started"
        future: asyncio.Future[None] = self._loop.create_future()
        try:
            self._producer.produce(topic, value, key, on_delivery=lambda err, _msg: self._done.append(
                (future, err)))
        except BufferError as exc:
            raise DeliveryError("local produce queue is full") from exc
        await future

    def _poll_forever(self) -> None:
        assert self._producer is not None and self._loop is not None
        while self._running:
            self._producer.poll(0.05)
            if self._done:
                batch, self._done = self._done, []
                self._loop.call_soon_threadsafe(_resolve_all, batch)


def _resolve_all(batch: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for future, err in batch:
        if future.done():
            continue
        if err is None:
            future.set_result(None)
        else:
            future.set_exception(DeliveryError(str(err)))


