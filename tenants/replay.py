"""Re-feed what ``wa.unroutable`` holds for one number once that number has a tenant.

Reads every partition of ``wa.unroutable`` from the start to its current end (no consumer
group: the topic is kept whole, and replaying twice is harmless because every downstream
write is idempotent). The end is where the consumer reports partition EOF (``broker.reading``),
not the high watermark, which some brokers under-report. Each
matching event, now owned by the tenant, goes where the router would have sent it at first (its topic, and a
media message's request too: ``schemas.routing.routed_records``), through the caller's producer (the
dispatcher's, or the command line's own).
"""

from __future__ import annotations

import asyncio
import logging

from broker.producer import AsyncProducer
from broker.reading import read_all
from config.settings import CoreSettings
from schemas.catalogue import UNROUTABLE
from schemas.events import UnroutableEvent
from schemas.routing import routed_records

log = logging.getLogger(__name__)


async def replay_unroutable(settings: CoreSettings, producer: AsyncProducer, route_keys: set[str], *,
                            tenant_id: str, read_timeout: float = 30.0) -> int:
    """Send every held event for these phone_number_ids / WABA ids on as ``tenant_id``'s; return how many."""
    loop = asyncio.get_running_loop()
    events = await loop.run_in_executor(None, lambda: held_records(settings, route_keys, tenant_id=tenant_id,
                                                                   timeout=read_timeout))
    await producer.send_all((topic, value, key) for records in events for topic, key, value in records)
    log.info("replayed %d held events for %s", len(events), sorted(route_keys))
    return len(events)


def held_records(settings: CoreSettings, route_keys: set[str], *, tenant_id: str,
                 timeout: float = 30.0) -> list[list[tuple[str, str, bytes]]]:
    """The (topic, key, value) records of every held event for these keys, re-addressed to ``tenant_id``."""
    records: list[list[tuple[str, str, bytes]]] = []
    for msg in read_all(settings, UNROUTABLE.full_name(settings.topic_prefix), timeout=timeout):
        if (msg.key() or b"").decode() not in route_keys:
            continue
        held = UnroutableEvent.decode(msg.value() or b"")
        event = held.inner.model_copy(update={"tenant_id": tenant_id})
        records.append([(spec.full_name(settings.topic_prefix), key, value)
                        for spec, key, value in routed_records(event)])
    return records
