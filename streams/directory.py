"""The tenant directory: phone_number_id (and WABA id) → tenant, read from ``tenants.directory``.

Every worker reads every partition of the compacted topic (a global table) with a plain
consumer, no group. ``start()`` blocks start-up until the whole topic is read, so a restarted
router never routes with an empty directory; ``sync()`` catches up to the topic's end, which
the router does on a miss so that a number attached a moment ago is found.

The end is never the broker's high watermark (the embedded broker under-reports it): it is where
the consumer reports partition EOF, and ``sync()`` also waits until nothing new has arrived for
``QUIET_S`` after it was called, so an entry appended just before the call has been fetched.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from broker.consumer import reader_config
from config.settings import CoreSettings
from schemas.events import DirectoryEntry

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 50
QUIET_S = 4 * FETCH_WAIT_MS / 1000  # a few fetch rounds: what was appended before sync() has arrived


class TenantDirectory:
    """An always-tailing, in-memory copy of ``tenants.directory``."""

    def __init__(self, settings: CoreSettings, topic: str) -> None:
        self._topic = topic
        config = reader_config(settings, fetch_wait_max_ms=FETCH_WAIT_MS, enable_partition_eof=True)
        self._consumer = Consumer(config)
        self._meta = Consumer(config)
        self._by_number: dict[str, DirectoryEntry] = {}
        self._by_waba: dict[str, str] = {}
        self._at_end: dict[int, bool] = {}
        self._last_record = 0.0
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> None:
        partitions = self._meta.list_topics(self._topic, timeout=timeout).topics[self._topic].partitions
        self._consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions])
        self._at_end = {p: False for p in partitions}
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
        """Wait until every partition is at its end and quiet since this call; False on timeout."""
        called = time.monotonic()
        deadline = called + timeout
        with self._cond:
            while True:
                quiet_until = max(called, self._last_record) + QUIET_S
                now = time.monotonic()
                if all(self._at_end.values()) and now >= quiet_until:
                    return True
                if now >= deadline:
                    return False
                self._cond.wait(min(deadline, max(quiet_until, now + 0.01)) - now)

    def _tail(self) -> None:
        while self._running:
            batch = self._consumer.consume(500, 0.1)
            with self._cond:
                for msg in batch:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            self._at_end[msg.partition() or 0] = True
                        else:
                            log.warning("directory read error: %s", err)
                        continue
                    self._apply(msg.key(), msg.value())
                    self._at_end[msg.partition() or 0] = False
                    self._last_record = time.monotonic()
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
