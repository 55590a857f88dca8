"""broker.runtime.StreamWorker's commits: asynchronous and coalesced (the batch loop never waits for one, at most one
is in flight and one per interval, the next carries every offset handled meanwhile), synchronous on a revoke and at
stop for what was handled of the revoked partitions (the commit in flight included), none for partitions lost with
the session; each answer counted as ok or refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition
from prometheus_client import REGISTRY

from broker import runtime
from broker.runtime import Output, StreamWorker
from config.settings import CoreSettings
from schemas.catalogue import ROUTER_GROUP
from tests.unit.broker.fakes import FakeMessage

Offsets = dict[tuple[str, int], int]


def Record(partition: int, offset: int) -> FakeMessage:
    return FakeMessage("in", partition, offset)


class Consumer:
    """Hands out ``batches`` one per poll; answers asynchronous commits only from a poll (or ``close``) and only
    when ``answering``; runs ``rebalance`` (revoke or lost, partitions) from its next poll, as librdkafka serves
    callbacks; ``close`` revokes what is still assigned, then answers what is in flight."""

    def __init__(self, batches: list[list[FakeMessage]], assigned: set[tuple[str, int]]) -> None:
        self.batches = batches
        self.assigned = assigned
        self.answering = True
        self.refuse = False
        self.rebalance: tuple[str, set[tuple[str, int]]] | None = None
        self.asynchronous: list[Offsets] = []
        self.synchronous: list[Offsets] = []
        self.on_commit: Any = None
        self._unanswered: list[list[TopicPartition]] = []

    def subscribe(self, _topics: list[str], on_assign: Any, on_revoke: Any, on_lost: Any) -> None:
        self.on_revoke, self.on_lost = on_revoke, on_lost

    def _serve(self) -> None:
        if self.rebalance is not None:
            (kind, partitions), self.rebalance = self.rebalance, None
            self.assigned -= partitions
            callback = self.on_revoke if kind == "revoke" else self.on_lost
            callback(self, [TopicPartition(t, p) for t, p in sorted(partitions)])
        if self.answering:
            unanswered, self._unanswered = self._unanswered, []
            for offsets in unanswered:
                error = KafkaError(KafkaError.REBALANCE_IN_PROGRESS) if self.refuse else None
                self.on_commit(error, offsets)

    def consume(self, _count: int, _timeout: float) -> list[FakeMessage]:
        self._serve()
        return self.batches.pop(0) if self.batches else []

    def poll(self, _timeout: float) -> FakeMessage | None:
        self._serve()
        return None

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition] | None:
        (self.asynchronous if asynchronous else self.synchronous).append(
            {(tp.topic, tp.partition): tp.offset for tp in offsets})
        if asynchronous:
            self._unanswered.append(offsets)
            return None
        return offsets

    def close(self) -> None:
        self.on_revoke(self, [TopicPartition(t, p) for t, p in sorted(self.assigned)])
        self.assigned = set()
        self.answering = True
        self._serve()

    def get_watermark_offsets(self, _tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        return 0, 100

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self.assigned)]


class Counting:
    """Publishes nothing; counts the batches handled."""

    def __init__(self, group_id: str) -> None:
        self.group_id, self.topics = group_id, ["in"]
        self.handled: list[list[tuple[int, int]]] = []

    async def process(self, batch: Sequence[Any]) -> list[Output]:
        self.handled.append([(m.partition(), m.offset()) for m in batch])
        return []

    async def saved(self) -> None:
        return None


class Producer:
    async def send_all(self, records: Iterable[tuple[str, bytes, bytes | None]]) -> None:
        return None


def _commits(group: str, result: str) -> float:
    return REGISTRY.get_sample_value("aerostic_consumer_commits_total", {"group": group, "result": result}) or 0.0


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "the worker never got there"
        await asyncio.sleep(0.002)


def _start(monkeypatch: pytest.MonkeyPatch, group: str, consumer: Consumer, settle_s: float = 0.0
           ) -> tuple[StreamWorker, Counting, asyncio.Task[None]]:
    def build(*_args: Any, on_commit: Any, **_overrides: Any) -> Consumer:
        consumer.on_commit = on_commit
        return consumer

    monkeypatch.setattr(runtime, "build_consumer", build)
    processor = Counting(group)
    worker = StreamWorker(processor, Producer(), CoreSettings(environment="test"),  # type: ignore[arg-type]
                          batch_size=100, batch_wait_s=0.001, settle_s=settle_s)
    return worker, processor, asyncio.create_task(worker.run())


async def _stop(worker: StreamWorker, task: asyncio.Task[None]) -> None:
    worker.stop()
    await task


async def test_batches_go_on_while_a_commit_is_unanswered_and_the_next_commit_carries_them_all(
        monkeypatch: pytest.MonkeyPatch) -> None:
    group = "commits-test-coalesced"
    consumer = Consumer([[Record(0, 0)], [Record(0, 1)], [Record(1, 7)]], {("in", 0), ("in", 1)})
    consumer.answering = False
    worker, processor, task = _start(monkeypatch, group, consumer)
    await _until(lambda: len(processor.handled) == 3)
    assert consumer.asynchronous == [{("in", 0): 1}]  # in flight: the two later batches did not wait for it
    consumer.answering = True
    await _until(lambda: len(consumer.asynchronous) == 2 and _commits(group, "ok") == 2)
    assert consumer.asynchronous[1] == {("in", 0): 2, ("in", 1): 8}
    await _stop(worker, task)
    assert consumer.synchronous == []  # the latest offsets were committed and answered: close has nothing to add
    assert _commits(group, "refused") == 0


async def test_a_revoke_commits_what_was_handled_of_its_partitions_the_commit_in_flight_included(
        monkeypatch: pytest.MonkeyPatch) -> None:
    group = "commits-test-revoke"
    consumer = Consumer([[Record(0, 0)], [Record(1, 5)], [Record(0, 1)]], {("in", 0), ("in", 1)})
    consumer.answering = False
    worker, processor, task = _start(monkeypatch, group, consumer)
    await _until(lambda: len(processor.handled) == 3)
    assert consumer.asynchronous == [{("in", 0): 1}]
    consumer.rebalance = ("revoke", {("in", 1)})
    await _until(lambda: len(consumer.synchronous) == 1)
    assert consumer.synchronous == [{("in", 1): 6}]  # handled, waiting behind the commit in flight
    consumer.rebalance = ("revoke", {("in", 0)})
    await _until(lambda: len(consumer.synchronous) == 2)
    assert consumer.synchronous[1] == {("in", 0): 2}  # the latest of the partition, past the one in flight
    consumer.answering = True
    await _stop(worker, task)
    assert len(consumer.synchronous) == 2  # nothing assigned any more: close has nothing to commit
    assert consumer.asynchronous == [{("in", 0): 1}]  # what was revoked is not committed again


async def test_at_stop_the_last_batch_handled_is_committed_before_the_group_is_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    group = "commits-test-stop"
    consumer = Consumer([[Record(0, 0), Record(0, 1)], [Record(0, 2)]], {("in", 0)})
    consumer.answering = False
    worker, processor, task = _start(monkeypatch, group, consumer)
    await _until(lambda: len(processor.handled) == 2)
    await _stop(worker, task)
    assert consumer.asynchronous == [{("in", 0): 2}]
    assert consumer.synchronous == [{("in", 0): 3}]
    assert _commits(group, "ok") == 2  # the synchronous one, and the answer to the one in flight served by close


async def test_lost_partitions_are_not_committed(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "commits-test-lost"
    consumer = Consumer([[Record(0, 0)], [Record(0, 1)]], {("in", 0)})
    consumer.answering = False
    worker, processor, task = _start(monkeypatch, group, consumer)
    await _until(lambda: len(processor.handled) == 2)
    consumer.rebalance = ("lost", {("in", 0)})
    await _until(lambda: consumer.rebalance is None)
    consumer.answering = True
    await _stop(worker, task)
    assert consumer.asynchronous == [{("in", 0): 1}]
    assert consumer.synchronous == []


async def test_a_refused_commit_is_counted_and_the_next_batch_commits_again(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "commits-test-refused"
    consumer = Consumer([[Record(0, 0)]], {("in", 0)})
    consumer.refuse = True
    worker, processor, task = _start(monkeypatch, group, consumer)
    await _until(lambda: _commits(group, "refused") == 1)
    consumer.refuse = False
    consumer.batches.append([Record(0, 1)])
    await _until(lambda: _commits(group, "ok") == 1)
    await _stop(worker, task)
    assert consumer.asynchronous == [{("in", 0): 1}, {("in", 0): 2}]
    assert processor.handled == [[(0, 0)], [(0, 1)]]


async def test_batches_within_the_interval_share_one_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "commits-test-interval"
    monkeypatch.setattr(runtime, "COMMIT_EVERY_S", 3600.0)
    consumer = Consumer([[Record(0, 0)], [Record(0, 1)], [Record(0, 2)]], {("in", 0)})
    worker, processor, task = _start(monkeypatch, group, consumer)
    await _until(lambda: len(processor.handled) == 3 and _commits(group, "ok") == 1)
    assert consumer.asynchronous == [{("in", 0): 1}]  # answered, but the next one waits for the interval
    await _stop(worker, task)
    assert consumer.synchronous == [{("in", 0): 3}]


class SettingAside(Counting):
    """Sets aside (as a dead letter) every record at offset 1 or 3; publishes nothing for the others."""

    async def process(self, batch: Sequence[Any]) -> list[Output]:
        await super().process(batch)
        return [runtime.dead_letter(self.group_id, m, ValueError("poison"), "") for m in batch if m.offset() in (1, 3)]


async def test_a_batch_that_set_a_record_aside_is_committed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "COMMIT_EVERY_S", 3600.0)
    consumer = Consumer([[Record(0, 0)], [Record(0, 1)], [Record(0, 2)], [Record(0, 3)]], {("in", 0)})
    consumer.answering = False

    def build(*_args: Any, on_commit: Any, **_overrides: Any) -> Consumer:
        consumer.on_commit = on_commit
        return consumer

    monkeypatch.setattr(runtime, "build_consumer", build)
    processor = SettingAside(ROUTER_GROUP)  # a catalogued group: it has a dead-letter topic
    worker = StreamWorker(processor, Producer(), CoreSettings(environment="test"),  # type: ignore[arg-type]
                          batch_size=100, batch_wait_s=0.001)
    task = asyncio.create_task(worker.run())
    await _until(lambda: len(processor.handled) == 4)
    assert consumer.asynchronous == [{("in", 0): 1}]  # the first batch's; the next waits for its answer
    consumer.answering = True
    await _until(lambda: len(consumer.asynchronous) == 2)
    # not an hour later: the batches after the first set records aside, so all they handled goes at once
    assert consumer.asynchronous[1] == {("in", 0): 4}
    await _stop(worker, task)
    assert consumer.synchronous == []
