"""Synchronous, acknowledged publishing for command-line tools (not the hot path)."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Producer

from aerostic.settings import CoreSettings


def publish(settings: CoreSettings, records: Iterable[tuple[str, str, bytes]], timeout: float = 30.0) -> int:
    """Produce (topic, key, value) records with ``acks=all``; raise unless every one was acknowledged."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all",
                         "enable.idempotence": True, "log_level": 3})
    errors: list[str] = []
    count = 0
    for topic, key, value in records:
        producer.produce(topic, value, key,
                         on_delivery=lambda err, _m: errors.append(str(err)) if err else None)
        count += 1
    if producer.flush(timeout) != 0 or errors:
        raise RuntimeError(f"records not acknowledged: {errors[:3] or 'timeout'}")
    return count
