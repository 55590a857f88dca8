"""broker.runtime.StreamWorker's ``deadline_s``: a batch whose ``process`` or ``saved`` stops answering is given up
after the deadline and retried as transient (its partitions paused meanwhile), not waited on for ever."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from broker import runtime
from broker.runtime import Output, StreamWorker, transient
from config.settings import CoreSettings
from tests.unit.broker.fakes import FakeMessage


class Consumer:
    """What the retry's wait uses: one partition, paused and resumed; a poll that finds nothing."""

    def __init__(self) -> None:
        self.paused: list[list[tuple[str, int]]] = []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("in", 0)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.append([(tp.topic, tp.partition) for tp in partitions])

    def resume(self, _partitions: list[TopicPartition]) -> None:
        return None

    def poll(self, _seconds: float) -> None:
        return None


class Stalling:
    """``process`` (or ``saved``) never returns on its first ``stalls`` calls, then returns at once."""

    def __init__(self, *, stalls: int, in_saved: bool = False) -> None:
        self.group_id, self.topics = "deadline-test", ["in"]
        self.stalls, self.in_saved = stalls, in_saved
        self.processed = 0
        self.saves = 0

    async def process(self, batch: Sequence[Any]) -> list[Output]:
        self.processed += 1
        if not self.in_saved and self.processed <= self.stalls:
            await asyncio.Event().wait()
        return []

    async def saved(self) -> None:
        self.saves += 1
        if self.in_saved and self.saves <= self.stalls:
            await asyncio.Event().wait()


class Producer:
    async def send_all(self, records: Any) -> None:
        return None


def _worker(monkeypatch: pytest.MonkeyPatch, processor: Stalling | Slow, consumer: Consumer,
            deadline_s: float | None) -> StreamWorker:
    monkeypatch.setattr(runtime, "build_consumer", lambda *_args, **_kwargs: consumer)
    return StreamWorker(processor, Producer(), CoreSettings(environment="test"),  # type: ignore[arg-type]
                        deadline_s=deadline_s)


@pytest.mark.parametrize("in_saved", [False, True])
async def test_a_step_that_stops_answering_is_given_up_at_the_deadline_and_retried(
        monkeypatch: pytest.MonkeyPatch, in_saved: bool) -> None:
    processor, consumer = Stalling(stalls=2, in_saved=in_saved), Consumer()
    worker = _worker(monkeypatch, processor, consumer, deadline_s=0.05)
    before = worker.metrics.transient._value.get()

    await asyncio.wait_for(worker._attempt([FakeMessage("in", 0, 7)]), 10)  # type: ignore[list-item]

    assert processor.processed == 3  # two given up, the third handled
    assert processor.saves == (3 if in_saved else 1)
    assert consumer.paused == [[("in", 0)], [("in", 0)]]  # the group kept, its partition paused while waiting
    assert worker.metrics.transient._value.get() - before == 2


async def test_the_deadlines_error_names_the_group_and_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _worker(monkeypatch, Stalling(stalls=1), Consumer(), deadline_s=0.01)

    with pytest.raises(TimeoutError, match=re.escape(
            "deadline-test: its services did not answer within 0.01 s")) as raised:
        await worker._in_time(asyncio.Event().wait())
    assert transient(raised.value)


async def test_a_timeout_of_the_step_itself_is_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    async def times_out() -> None:
        raise TimeoutError("the step's own")

    worker = _worker(monkeypatch, Stalling(stalls=0), Consumer(), deadline_s=5)
    with pytest.raises(TimeoutError, match="the step's own"):
        await worker._in_time(times_out())


class Slow:
    """``process`` takes ``seconds`` every time (work that ends, only late)."""

    def __init__(self, *, seconds: float) -> None:
        self.group_id, self.topics = "deadline-test", ["in"]
        self.seconds, self.processed = seconds, 0

    async def process(self, batch: Sequence[Any]) -> list[Output]:
        self.processed += 1
        await asyncio.sleep(self.seconds)  # the step's own slowness, not a synchronisation
        return []

    async def saved(self) -> None:
        return None


async def test_a_batch_that_is_only_slow_ends_with_a_stretched_deadline_and_the_next_has_the_deadline_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    processor = Slow(seconds=0.1)
    worker = _worker(monkeypatch, processor, Consumer(), deadline_s=0.04)
    monkeypatch.setattr(runtime, "DEADLINE_STRETCH_MAX", 8)

    await asyncio.wait_for(worker._attempt([FakeMessage("in", 0, 1)]), 10)  # type: ignore[list-item]
    assert processor.processed == 3  # given up at 0.04 and 0.08 s, handled within 0.16 (without the stretch: never)

    stalling = Stalling(stalls=1)
    worker.processor = stalling
    with pytest.raises(TimeoutError, match=re.escape("within 0.04 s")):  # the next batch: the deadline again
        await worker._in_time(stalling.process([]))
