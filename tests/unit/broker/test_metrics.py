"""broker.metrics through the runtime: a handled batch moves the group's counters, histograms, commits and lag
(from the consumer's cached fetch watermark), a dead-lettered record is counted, and the producer counts its
delivery reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from prometheus_client import REGISTRY

from broker import producer as producer_module
from broker import runtime
from broker.consumer import CommitError
from broker.metrics import GroupMetrics, slices
from broker.offsets import OffsetTracker, commit_finished
from broker.producer import AsyncProducer
from broker.runtime import Output, StreamWorker
from config.settings import CoreSettings
from tests.unit.broker.fakes import FakeMessage


class FakeConsumer:
    """Hands out one batch, then nothing; commits everything (answering asynchronous commits in its next poll or
    its close, as librdkafka does); its last fetch saw ``high`` per partition."""

    def __init__(self, batch: list[FakeMessage], high: dict[tuple[str, int], int]) -> None:
        self.batches = [batch]
        self.high = high
        self.committed: list[TopicPartition] = []
        self.on_commit: Any = None
        self._answers: list[list[TopicPartition]] = []

    def subscribe(self, _topics: list[str], on_assign: Any = None, on_revoke: Any = None, on_lost: Any = None) -> None:
        self.on_revoke = on_revoke

    def _answer(self) -> None:
        answers, self._answers = self._answers, []
        for offsets in answers:
            self.on_commit(None, offsets)

    def poll(self, _timeout: float) -> FakeMessage | None:
        self._answer()
        if not self.batches or not self.batches[0]:
            return None
        return self.batches[0].pop(0)

    def consume(self, count: int, _timeout: float) -> list[FakeMessage]:
        self._answer()
        taken, self.batches[0] = self.batches[0][:count], self.batches[0][count:]
        return taken

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition] | None:
        self.committed += offsets
        if asynchronous:
            self._answers.append(offsets)
            return None
        return offsets

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        assert cached, "the lag must come from the fetch's watermark, not a ListOffsets request"
        return (0, self.high[(tp.topic, tp.partition)]) if (tp.topic, tp.partition) in self.high else (-1001, -1001)

    def assignment(self) -> list[TopicPartition]:
        return []

    def close(self) -> None:
        self._answer()


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value))

    async def send_all(self, records: Iterable[tuple[str, bytes, bytes | None]]) -> None:
        for topic, value, key in records:
            await self.send(topic, value, key)


class Echo:
    """Publishes one output per record; fails on the record whose key is b"bad"; stops the worker when saved."""

    def __init__(self, group_id: str) -> None:
        self.group_id, self.topics = group_id, ["in"]
        self.worker: StreamWorker | None = None

    async def process(self, batch: Sequence[Any]) -> list[Output]:
        if any(m.key() == b"bad" for m in batch):
            raise ValueError("a record of its own kind of wrong")
        return [Output("out", m.key(), b"x") for m in batch]

    async def saved(self) -> None:
        return None


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _worker(monkeypatch: pytest.MonkeyPatch, group: str, consumer: FakeConsumer) -> tuple[StreamWorker, FakeProducer]:
    def build(*_args: Any, on_commit: Any, **_overrides: Any) -> FakeConsumer:
        consumer.on_commit = on_commit
        return consumer

    monkeypatch.setattr(runtime, "build_consumer", build)
    producer = FakeProducer()
    worker = StreamWorker(Echo(group), producer, CoreSettings(environment="test"),  # type: ignore[arg-type]
                          batch_size=100, batch_wait_s=0.01)
    return worker, producer


async def _run_until_committed(worker: StreamWorker, consumer: FakeConsumer, count: int) -> None:
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 10
    while len(consumer.committed) < count:
        assert time.monotonic() < deadline, "the batch was never committed"
        await asyncio.sleep(0.01)
    worker.stop()
    await task


async def test_a_handled_batch_moves_the_groups_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "metrics-test-batch"
    batch = [FakeMessage("in", 0, 10, age_s=0.3), FakeMessage("in", 0, 11), FakeMessage("in", 1, 5, age_s=0.3)]
    consumer = FakeConsumer(batch, high={("in", 0): 20, ("in", 1): 6})
    worker, producer = _worker(monkeypatch, group, consumer)
    await _run_until_committed(worker, consumer, 2)
    assert len(producer.sent) == 3
    assert _value("aerostic_stream_records_total", group=group, topic="in") == 3
    assert _value("aerostic_stream_batches_total", group=group) == 1
    assert _value("aerostic_stream_batch_records_count", group=group) == 1
    assert _value("aerostic_stream_batch_records_sum", group=group) == 3
    assert _value("aerostic_stream_batch_seconds_count", group=group) == 1
    assert _value("aerostic_consumer_commits_total", group=group, result="ok") == 1
    # one hop observation per partition: its first record, which waited about 0.3 s
    assert _value("aerostic_stream_hop_latency_seconds_count", group=group) == 2
    assert 0.5 <= _value("aerostic_stream_hop_latency_seconds_sum", group=group) < 5
    assert _value("aerostic_consumer_lag_records", group=group, topic="in", partition="0") == 20 - 12
    assert _value("aerostic_consumer_lag_records", group=group, topic="in", partition="1") == 0
    consumer.on_revoke(consumer, [TopicPartition("in", 0)])
    assert REGISTRY.get_sample_value("aerostic_consumer_lag_records",
                                     {"group": group, "topic": "in", "partition": "0"}) is None


async def test_a_dead_lettered_record_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "aerostic-router"  # a group of the catalogue: it has a dead-letter topic
    consumer = FakeConsumer([FakeMessage("in", 0, 1, key=b"bad"), FakeMessage("in", 0, 2)], high={("in", 0): 3})
    worker, producer = _worker(monkeypatch, group, consumer)
    # The registry is the process's: other tests of this session may have counted in this group already.
    dead_before = _value("aerostic_dead_letters_total", group=group)
    records_before = _value("aerostic_stream_records_total", group=group, topic="in")
    await _run_until_committed(worker, consumer, 1)
    assert _value("aerostic_dead_letters_total", group=group) - dead_before == 1
    assert _value("aerostic_stream_records_total", group=group, topic="in") - records_before == 2
    assert sorted(topic for topic, _ in producer.sent) == [f"dlq.{group}", "out"]


def test_slices_give_the_commit_offsets_and_the_first_timestamps() -> None:
    parts = slices([FakeMessage("a", 0, 7), FakeMessage("a", 0, 9), FakeMessage("a", 0, 8), FakeMessage("b", 2, 0)])
    assert {tp: (p.records, p.next_offset) for tp, p in parts.items()} == {("a", 0): (3, 10), ("b", 2): (1, 1)}
    assert all(p.first_timestamp_ms > 0 for p in parts.values())


def test_lag_is_never_negative_and_unknown_watermarks_are_skipped() -> None:
    group = "metrics-test-lag"
    consumer = FakeConsumer([], high={("t", 0): 5})
    GroupMetrics(group).lag(consumer, {("t", 0): 9, ("t", 1): 3})
    assert _value("aerostic_consumer_lag_records", group=group, topic="t", partition="0") == 0
    assert REGISTRY.get_sample_value("aerostic_consumer_lag_records",
                                     {"group": group, "topic": "t", "partition": "1"}) is None


async def test_the_producer_counts_its_delivery_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    produced, errors = _value("aerostic_producer_records_total"), _value("aerostic_producer_errors_total")
    sender = AsyncProducer("127.0.0.1:1")
    monkeypatch.setattr(producer_module, "REPLACE_AFTER_FAILURES", 99)
    loop = asyncio.get_running_loop()
    reports: list[tuple[asyncio.Future[None], KafkaError | None]] = [
        (loop.create_future(), None), (loop.create_future(), None),
        (loop.create_future(), KafkaError(KafkaError._MSG_TIMED_OUT))]
    sender._watch_failures(reports)
    assert _value("aerostic_producer_records_total") - produced == 2
    assert _value("aerostic_producer_errors_total") - errors == 1


def test_lag_is_refreshed_at_most_every_second_from_the_latest_positions() -> None:
    group = "metrics-test-lag-refresh"
    consumer = FakeConsumer([], high={("t", 0): 100})
    metrics = GroupMetrics(group)
    metrics.lag(consumer, {("t", 0): 10})
    metrics.lag(consumer, {("t", 0): 60})  # within the second: remembered, not yet computed
    assert _value("aerostic_consumer_lag_records", group=group, topic="t", partition="0") == 90
    metrics._lag_at -= 1.0
    metrics.lag(consumer, {})
    assert _value("aerostic_consumer_lag_records", group=group, topic="t", partition="0") == 40


class BusyConsumer(FakeConsumer):
    """Its calls wait for the fetch another thread has in progress, as confluent-kafka's do (measured: 100 ms)."""

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        time.sleep(0.3)
        return super().get_watermark_offsets(tp, cached)


async def test_a_commit_and_its_lag_leave_the_event_loop_free() -> None:
    group = "metrics-test-commit-off-loop"
    consumer = BusyConsumer([], high={("t", 0): 12})
    metrics, tracker = GroupMetrics(group), OffsetTracker()
    tracker.received("t", 0, 9)
    tracker.finished("t", 0, 9)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await commit_finished(consumer, tracker, tracker.committable(), metrics)  # type: ignore[arg-type]
    finally:
        ticker.cancel()
    assert ticks >= 10  # the loop kept turning while the consumer's call waited
    assert consumer.committed == [TopicPartition("t", 0, 10)]
    assert _value("aerostic_consumer_lag_records", group=group, topic="t", partition="0") == 2
    assert _value("aerostic_consumer_commits_total", group=group, result="ok") == 1


class RefusingConsumer(FakeConsumer):
    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition] | None:
        raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))


async def test_a_refused_commit_is_counted_and_raised() -> None:
    group = "metrics-test-commit-refused"
    consumer, metrics, tracker = RefusingConsumer([], high={}), GroupMetrics(group), OffsetTracker()
    tracker.received("t", 0, 3)
    tracker.finished("t", 0, 3)
    with pytest.raises(CommitError):
        await commit_finished(consumer, tracker, tracker.committable(), metrics)  # type: ignore[arg-type]
    assert _value("aerostic_consumer_commits_total", group=group, result="refused") == 1
    assert tracker.committable() == {("t", 0): 4}  # nothing recorded as committed
