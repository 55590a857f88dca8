"""The tenant directory: phone_number_id (and WABA id) → tenant, read from ``tenants.directory``.

Every worker reads every partition of the compacted topic (a global table) with a plain
consumer, no group. ``load()`` blocks start-up until the whole topic is read, so a restarted
router never routes with an empty directory; ``sync()`` catches up to the topic's end, which
the router does on a miss so that a number attached a moment ago is found.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from broker.consumer import reader_config
from config.settings import CoreSettings
from schemas.events import DirectoryEntry

log = logging.getLogger(__name__)


class TenantDirectory:
    """An always-tailing, in-memory copy of ``tenants.directory``."""

    def __init__(self, settings: CoreSettings, topic: str) -> None:
        self._topic = topic
        config = reader_config(settings, fetch_wait_max_ms=50)
        self._consumer = Consumer(config)
        self._meta = Consumer(config)
        self._by_number: dict[str, DirectoryEntry] = {}
        self._by_waba: dict[str, str] = {}
        self._positions: dict[int, int] = {}
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> None:
        partitions = self._meta.list_topics(self._topic, timeout=timeout).topics[self._topic].partitions
        self._consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions])
        self._positions = {p: 0 for p in partitions}
        self._running = True
        self._thread = threading.Thread(target=self._tail, name="tenant-directory", daemon=True)
        self._thread.start()
        self.sync(timeout)

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(5.0)
        self._consumer.close()
        self._meta.close()

    def lookup(self, route_key: str) -> str | None:
        """The tenant owning this phone_number_id (or WABA id), if any."""
        entry = self._by_number.get(route_key)
        if entry is not None:
            return entry.tenant_id
        return self._by_waba.get(route_key)

    def sync(self, timeout: float) -> bool:
        """Wait until everything in the topic right now has been read; False on timeout."""
        ends = {p: self._meta.get_watermark_offsets(TopicPartition(self._topic, p), timeout=timeout)[1]
                for p in self._positions}
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(self._positions[p] < end for p, end in ends.items()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _tail(self) -> None:
        while self._running:
            batch = self._consumer.consume(500, 0.1)
            with self._cond:
                for msg in batch:
                    if msg.error():
                        log.warning("directory read error: %s", msg.error())
                        continue
                    self._apply(msg.key(), msg.value())
                    self._positions[msg.partition() or 0] = (msg.offset() or 0) + 1
                self._cond.notify_all()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        number = key.decode() if key else None
        if value is None:
            if number:
                self._by_number.pop(number, None)
            return
        entry = DirectoryEntry.decode(value)
        if entry.tenant_id is None:
            self._by_number.pop(entry.phone_number_id, None)
            return
        self._by_number[entry.phone_number_id] = entry
        if entry.waba_id:
            self._by_waba[entry.waba_id] = entry.tenant_id
