"""Prometheus metrics of the Kafka kit: the stream runtime, the consumers that commit on their own, the producer.

Labels are bounded: consumer group, topic and partition (fixed by the topic catalogue), a result. Never a
tenant or a conversation. Figures are updated once per batch, with label children bound once per worker
(``GroupMetrics``): a batch costs a few dictionary look-ups and one observation per partition, not work per
record.

Lag is the fetch's own high watermark (``get_watermark_offsets(cached=True)``: what the last fetch response
said) minus the group's committed position, per partition, refreshed when a commit is answered, at most every
second. The broker's ListOffsets answer is not used: the embedded broker (Tansu) reports a ListOffsets high
watermark far below the real end of a topic. A partition that has not been fetched yet has no cached watermark
and shows no lag; a broker whose fetch responses also lag behind makes the figure low, never negative (clamped at
zero).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from confluent_kafka import KafkaException, TopicPartition
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # no ``*_created`` series beside every counter: half the exposition, nothing lost
BATCH_SIZES = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RECORDS = Counter("aerostic_stream_records",
                  "Records handled by a consumer group (the dispatcher and AI worker: received, as they finish out of "
                  "order)", ["group", "topic"])
BATCHES = Counter("aerostic_stream_batches", "Batches handled and committed by a stream processor", ["group"])
BATCH_RECORDS = Histogram("aerostic_stream_batch_records", "Records per batch", ["group"], buckets=BATCH_SIZES)
BATCH_SECONDS = Histogram("aerostic_stream_batch_seconds",
                          "One batch from the start of its handling until its offsets may be committed (outputs "
                          "acknowledged, state saved; the commit itself is asynchronous)",
                          ["group"], buckets=SECONDS)
HOP_SECONDS = Histogram("aerostic_stream_hop_latency_seconds",
                        "From a record's Kafka timestamp to the start of its handling: observed once per batch and "
                        "partition, for the partition's first (longest-waiting) record of the batch",
                        ["group"], buckets=SECONDS)
LAG = Gauge("aerostic_consumer_lag_records",
            "Records behind the end of a partition after the group's last commit (the fetch's high watermark)",
            ["group", "topic", "partition"])
ASSIGNMENTS = Counter("aerostic_consumer_assignments",
                      "Partition assignments this process's consumer of the group received: one per rebalance it took "
                      "part in", ["group"])
DEAD_LETTERS = Counter("aerostic_dead_letters", "Records set aside in the group's dead-letter topic", ["group"])
COMMITS = Counter("aerostic_consumer_commits", "Offset commits of a group, by result (ok, refused)",
                  ["group", "result"])
TRANSIENT = Counter("aerostic_stream_transient_failures",
                    "Batch attempts that met an unavailable broker, Redis or PostgreSQL (retried)", ["group"])
PRODUCED = Counter("aerostic_producer_records", "Records the broker acknowledged to this process's producers")
PRODUCE_ERRORS = Counter("aerostic_producer_errors",
                         "Records the broker did not acknowledge (refused, timed out, purged, local queue full)")

LAG_EVERY_S = 1.0  # lag is computed at most this often per group


class Slice(NamedTuple):
    """One partition's share of a batch."""

    records: int
    next_offset: int  # the offset to commit once the batch is done
    first_timestamp_ms: int  # the Kafka timestamp of its first record (0: none)


def slices(batch: Iterable[Any]) -> dict[tuple[str, int], Slice]:
    """Per (topic, partition): how many records, the offset to commit after them, the first one's timestamp."""
    found: dict[tuple[str, int], list[int]] = {}
    for msg in batch:
        tp = (msg.topic() or "", msg.partition() or 0)
        offset = (msg.offset() or 0) + 1
        entry = found.get(tp)
        if entry is None:
            kind, stamp = msg.timestamp()
            found[tp] = [1, offset, stamp if kind and stamp > 0 else 0]
        else:
            entry[0] += 1
            if offset > entry[1]:
                entry[1] = offset
    return {tp: Slice(*entry) for tp, entry in found.items()}


class GroupMetrics:
    """The label children of one consumer group, bound once; ``batch`` and ``lag`` are per-batch updates."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.batches = BATCHES.labels(group)
        self.batch_records = BATCH_RECORDS.labels(group)
        self.batch_seconds = BATCH_SECONDS.labels(group)
        self.hop_seconds = HOP_SECONDS.labels(group)
        self.dead_letters = DEAD_LETTERS.labels(group)
        self.commits_ok = COMMITS.labels(group, "ok")
        self.commits_refused = COMMITS.labels(group, "refused")
        self.transient = TRANSIENT.labels(group)
        self._records: dict[str, Any] = {}
        self._partitions: dict[tuple[str, int], TopicPartition] = {}
        self._lag: dict[tuple[str, int], Any] = {}
        self._positions: dict[tuple[str, int], int] = {}
        self._lag_at = float("-inf")

    def started(self, parts: dict[tuple[str, int], Slice], now_s: float) -> None:
        """A batch's handling starts: records per topic, batch size, each partition's hop latency."""
        total = 0
        per_topic: dict[str, int] = {}
        now_ms = now_s * 1000.0
        for (topic, _), part in parts.items():
            total += part.records
            per_topic[topic] = per_topic.get(topic, 0) + part.records
            if part.first_timestamp_ms:
                self.hop_seconds.observe(max(0.0, (now_ms - part.first_timestamp_ms) / 1000.0))
        for topic, count in per_topic.items():
            child = self._records.get(topic)
            if child is None:
                child = self._records[topic] = RECORDS.labels(self.group, topic)
            child.inc(count)
        self.batch_records.observe(total)

    def finished(self, seconds: float) -> None:
        self.batches.inc()
        self.batch_seconds.observe(seconds)

    def lag(self, consumer: Any, positions: dict[tuple[str, int], int]) -> None:
        """Record the positions just committed; at most every ``LAG_EVERY_S``, set every partition's lag from
        the consumer's cached watermark (a scrape every few seconds needs no fresher figure)."""
        self._positions.update(positions)
        now = time.monotonic()
        if now - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = now
        for tp, position in list(self._positions.items()):
            partition = self._partitions.get(tp)
            if partition is None:
                partition = self._partitions[tp] = TopicPartition(tp[0], tp[1])
            high = watermark(consumer, partition)
            if high is None:
                continue
            child = self._lag.get(tp)
            if child is None:
                child = self._lag[tp] = LAG.labels(self.group, tp[0], str(tp[1]))
            child.set(max(0, high - position))

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Partitions given to another member (called on the polling thread): their lag is that member's."""
        for tp in partitions:
            self._positions.pop(tp, None)
            if self._lag.pop(tp, None) is not None:
                LAG.remove(self.group, tp[0], str(tp[1]))


def watermark(consumer: Any, tp: TopicPartition) -> int | None:
    """The high watermark of ``tp`` in the consumer's last fetch response, or None when it has none yet."""
    try:
        _low, high = consumer.get_watermark_offsets(tp, cached=True)
    except KafkaException:
        return None
    return None if high is None or high < 0 else int(high)
