"""Which offsets a consumer that finishes records out of order may commit.

Records of one partition can finish in any order when they are handled concurrently (the
dispatcher's workers, the AI worker's requests). ``OffsetTracker`` keeps, per partition, the
offsets received and not yet finished, and offers for commit only the position below the first
unfinished one, so a crash never skips a record whose effects are not durable.
"""

from __future__ import annotations

import asyncio
from functools import partial

from confluent_kafka import Consumer

from broker.consumer import CommitError, commit
from broker.metrics import GroupMetrics


class OffsetTracker:
    """Per partition: offsets received and finished; commit only below the first unfinished one."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, int], set[int]] = {}
        self._next: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def received(self, topic: str, partition: int, offset: int) -> None:
        tp = (topic, partition)
        self._open.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def finished(self, topic: str, partition: int, offset: int) -> None:
        self._open.get((topic, partition), set()).discard(offset)

    def committable(self) -> dict[tuple[str, int], int]:
        """Offsets that advanced since the last call: everything below them is finished."""
        out: dict[tuple[str, int], int] = {}
        for tp, upto in self._next.items():
            pending = self._open.get(tp)
            position = min(pending) if pending else upto
            if position > self._committed.get(tp, -1):
                out[tp] = position
        return out

    def committed(self, offsets: dict[tuple[str, int], int]) -> None:
        self._committed.update(offsets)

    def forget(self, partitions: set[tuple[str, int]]) -> None:
        for tp in partitions:
            self._open.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)

    @property
    def open_count(self) -> int:
        return sum(len(v) for v in self._open.values())


async def commit_finished(consumer: Consumer, tracker: OffsetTracker, offsets: dict[tuple[str, int], int],
                          metrics: GroupMetrics | None = None) -> None:
    """Commit ``offsets`` (from ``tracker.committable()``) synchronously off the event loop, then record them;
    with ``metrics``, count the commit (ok or refused) and set the partitions' lag on the same pool thread.

    Neither call may run on the event loop: a call to the consumer can wait for the fetch another thread has in
    progress (measured: ``get_watermark_offsets`` held the dispatcher's loop for the fetch's 100 ms, once a
    second). Raises ``CommitError`` when the broker refused (the records are handled again after a rebalance).
    """
    if not offsets:
        return
    await asyncio.get_running_loop().run_in_executor(None, partial(_commit_and_measure, consumer, offsets, metrics))
    tracker.committed(offsets)


def _commit_and_measure(consumer: Consumer, offsets: dict[tuple[str, int], int], metrics: GroupMetrics | None) -> None:
    try:
        commit(consumer, offsets)
    except CommitError:
        if metrics is not None:
            metrics.commits_refused.inc()
        raise
    if metrics is not None:
        metrics.commits_ok.inc()
        metrics.lag(consumer, offsets)
