"""Reading Kafka in batches without adding latency, and without spinning while the broker is away.

``Consumer.consume(n, timeout)`` waits until it has ``n`` records or the timeout passed, so an
idle pipeline would hold every single record for the whole timeout. ``next_batch`` waits only
for the first record, then takes whatever else is already fetched. ``ready`` takes only what is
already fetched and never waits, so a caller on the event loop can try it first and leave the
thread-pool hop of ``next_batch`` to the case where it has to wait. Error events (the broker is
unreachable, a partition is gone) are logged at most every few seconds and are not returned; when
a poll brings only errors, ``next_batch`` still lasts its whole wait, so a caller's loop never spins.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, Message

log = logging.getLogger(__name__)

ERROR_LOG_EVERY_S = 5.0
_last_logged = 0.0


def next_batch(consumer: Consumer, max_records: int, wait_s: float) -> list[Message]:
    """Up to ``max_records`` records: blocks at most ``wait_s`` for the first, not at all for the rest."""
    started = time.monotonic()
    first = consumer.poll(wait_s)
    if first is None:
        return []
    records = _records([first, *consumer.consume(max_records - 1, 0)] if max_records > 1 else [first])
    if not records:
        time.sleep(max(0.0, wait_s - (time.monotonic() - started)))
    return records


def ready(consumer: Consumer, max_records: int) -> list[Message]:
    """Up to ``max_records`` records already fetched, without waiting (it serves the consumer's callbacks too)."""
    return _records(consumer.consume(max_records, 0))


def settled(consumer: Consumer, batch: list[Message], max_records: int, settle_s: float) -> list[Message]:
    """``batch`` with whatever else arrives within ``settle_s`` (up to ``max_records`` in all). librdkafka hands a
    fetch response over partition by partition, so a reader woken by the first partition's records can take the
    response in two batches; a reader that orders a batch across partitions settles for a moment first."""
    if len(batch) >= max_records:
        return batch
    return batch + _records(consumer.consume(max_records - len(batch), settle_s))


def _records(batch: list[Message]) -> list[Message]:
    records = [m for m in batch if not m.error()]
    if len(records) < len(batch):
        _log_errors([m for m in batch if m.error()])
    return records


def _log_errors(failed: list[Message]) -> None:
    global _last_logged
    now = time.monotonic()
    if now - _last_logged >= ERROR_LOG_EVERY_S:
        _last_logged = now
        log.warning("consume errors (%d), e.g. %s", len(failed), failed[0].error())
