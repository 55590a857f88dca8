"""broker.runtime.StreamWorker's ``settle_s``: a fresh batch waits that long for the rest of its fetch, which
librdkafka hands over partition by partition, so a reader that orders a batch across partitions sees it whole."""

from __future__ import annotations

import pytest

from tests.unit.broker.fakes import FakeMessage
from tests.unit.broker.test_runtime_commits import Consumer, _start, _stop, _until


class Handing(Consumer):
    """One fetch of two partitions handed over in two parts: the first partition's record, then the second's."""

    def __init__(self) -> None:
        super().__init__([[FakeMessage("in", 0, 4)], [FakeMessage("in", 1, 9)]], {("in", 0), ("in", 1)})


async def _handled(monkeypatch: pytest.MonkeyPatch, group: str, settle_s: float) -> list[list[tuple[int, int]]]:
    worker, processor, task = _start(monkeypatch, group, Handing(), settle_s)
    await _until(lambda: sum(len(b) for b in processor.handled) == 2)
    await _stop(worker, task)
    return processor.handled


async def test_a_settling_reader_takes_a_fetch_handed_over_in_two_parts_as_one_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert await _handled(monkeypatch, "settle-test-on", 0.005) == [[(0, 4), (1, 9)]]


async def test_without_settling_the_two_parts_are_two_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    assert await _handled(monkeypatch, "settle-test-off", 0.0) == [[(0, 4)], [(1, 9)]]
