"""Reading Kafka in batches without adding latency.

``Consumer.consume(n, timeout)`` waits until it has ``n`` records or the timeout passed, so an
idle pipeline would hold every single record for the whole timeout. ``next_batch`` waits only
for the first record, then takes whatever else is already fetched.
"""

from __future__ import annotations

from confluent_kafka import Consumer, Message


def next_batch(consumer: Consumer, max_records: int, wait_s: float) -> list[Message]:
    """Up to ``max_records`` records: blocks at most ``wait_s`` for the first, not at all for the rest."""
    first = consumer.poll(wait_s)
    if first is None:
        return []
    return [first, *consumer.consume(max_records - 1, 0)] if max_records > 1 else [first]
