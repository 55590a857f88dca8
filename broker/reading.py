"""Reading a whole topic from its beginning to its end, without trusting the broker's high watermark.

Some brokers (the embedded one among them) report a high watermark below the real end of a
topic, so "the end" is where the consumer itself reports it: a partition-EOF event after the last
record it fetched. ``read_all`` reads every partition from the start until each has reported EOF.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from broker.consumer import reader_config
from config.settings import CoreSettings


def read_all(settings: CoreSettings, topic: str, *, timeout: float = 30.0) -> Iterator[Message]:
    """Every record of ``topic`` now, partition by partition in offset order; ``TimeoutError`` if it stalls."""
    consumer = Consumer(reader_config(settings, enable_partition_eof=True, fetch_wait_max_ms=50))
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} to its end stalled ({len(pending)} partitions)")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition() or 0)
                continue
            yield msg
    finally:
        consumer.close()
