"""broker.runtime.StreamWorker's ``settle_s``: a fresh batch waits that long for the rest of its fetch, which
librdkafka hands over partition by partition, so a reader that orders a batch across partitions sees it whole."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker import runtime
from broker.runtime import StreamWorker
from config.settings import CoreSettings
from tests.unit.broker.fakes import FakeMessage
from tests.unit.broker.test_runtime_commits import Consumer, Counting, Producer, _until


class Handing(Consumer):
    """One fetch of two partitions handed over in two parts: the first partition's record, then the second's."""

    def __init__(self) -> None:
        super().__init__([[FakeMessage("in", 0, 4)], [FakeMessage("in", 1, 9)]], {("in", 0), ("in", 1)})


async def _handled(monkeypatch: pytest.MonkeyPatch, group: str, settle_s: float) -> list[list[tuple[int, int]]]:
    consumer = Handing()

    def build(*_args: Any, on_commit: Any, **_overrides: Any) -> Consumer:
        consumer.on_commit = on_commit
        return consumer

    monkeypatch.setattr(runtime, "build_consumer", build)
    processor = Counting(group)
    worker = StreamWorker(processor, Producer(), CoreSettings(environment="test"),  # type: ignore[arg-type]
                          batch_size=100, batch_wait_s=0.001, settle_s=settle_s)
    task = asyncio.create_task(worker.run())
    await _until(lambda: sum(len(b) for b in processor.handled) == 2)
    worker.stop()
    await task
    return processor.handled


async def test_a_settling_reader_takes_a_fetch_handed_over_in_two_parts_as_one_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert await _handled(monkeypatch, "settle-test-on", 0.005) == [[(0, 4), (1, 9)]]


async def test_without_settling_the_two_parts_are_two_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    assert await _handled(monkeypatch, "settle-test-off", 0.0) == [[(0, 4)], [(1, 9)]]
