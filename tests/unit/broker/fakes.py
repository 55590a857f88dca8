"""Fakes shared by the broker's unit tests."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError


class FakeMessage:
    """A consumed record: what the runtime and the metrics read of ``confluent_kafka.Message``."""

    def __init__(self, topic: str, partition: int, offset: int, *, age_s: float = 0.0, key: bytes = b"k",
                 error: KafkaError | None = None, timestamp_ms: int | None = None, value: bytes = b"{}") -> None:
        self._topic, self._partition, self._offset, self._key, self._error = topic, partition, offset, key, error
        self._value = value
        self._timestamp = int((time.time() - age_s) * 1000) if timestamp_ms is None else timestamp_ms

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def error(self) -> KafkaError | None:
        return self._error

    def timestamp(self) -> tuple[int, int]:
        return 1, self._timestamp
