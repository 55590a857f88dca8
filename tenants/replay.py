"""Re-feed what ``wa.unroutable`` holds for one number once that number has a tenant.

Reads every partition of ``wa.unroutable`` from the start to its current end (no consumer
group: the topic is kept whole, and replaying twice is harmless because every downstream
write is idempotent). The end is the high watermark and then whatever still comes within
``settle_s``: brokers such as the embedded one under-report watermarks of batched writes. Each
matching event, now owned by the tenant, goes to the topic it would have gone to at first,
through the caller's producer (the dispatcher's, or the command line's own).
"""

from __future__ import annotations

import asyncio
import logging

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from broker.consumer import reader_config
from broker.producer import AsyncProducer
from config.settings import CoreSettings
from schemas.catalogue import UNROUTABLE
from schemas.events import UnroutableEvent
from schemas.routing import destination

log = logging.getLogger(__name__)


async def replay_unroutable(settings: CoreSettings, producer: AsyncProducer, route_keys: set[str], *,
                            tenant_id: str, read_timeout: float = 30.0, settle_s: float = 1.0) -> int:
    """Send every held event for these phone_number_ids / WABA ids on as ``tenant_id``'s; return how many."""
    loop = asyncio.get_running_loop()
    records = await loop.run_in_executor(None, lambda: held_records(settings, route_keys, tenant_id=tenant_id,
                                                                    timeout=read_timeout, settle_s=settle_s))
    await asyncio.gather(*(producer.send(topic, value, key) for topic, key, value in records))
    log.info("replayed %d held events for %s", len(records), sorted(route_keys))
    return len(records)


def held_records(settings: CoreSettings, route_keys: set[str], *, tenant_id: str, timeout: float = 30.0,
                 settle_s: float = 1.0) -> list[tuple[str, str, bytes]]:
    """(topic, key, value) of every held event for these keys, re-addressed to ``tenant_id``."""
    topic = UNROUTABLE.full_name(settings.topic_prefix)
    consumer = Consumer(reader_config(settings))
    records: list[tuple[str, str, bytes]] = []
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
                for p in partitions}
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while True:
            msg = consumer.poll(timeout if todo else settle_s)
            if msg is None:
                if todo:
                    raise TimeoutError(f"replay of {topic} stalled")
                break
            if msg.error():
                continue
            partition, offset = msg.partition() or 0, msg.offset() or 0
            if offset >= ends[partition] - 1:
                todo.discard(partition)
            if (msg.key() or b"").decode() not in route_keys:
                continue
            held = UnroutableEvent.decode(msg.value() or b"")
            event = held.inner.model_copy(update={"tenant_id": tenant_id})
            spec, key = destination(event)
            records.append((spec.full_name(settings.topic_prefix), key, event.encode()))
    finally:
        consumer.close()
    return records
