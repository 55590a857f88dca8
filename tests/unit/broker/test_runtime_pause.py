"""broker.runtime.StreamWorker: a partition paused while a batch waits for its services is resumed afterwards even
when a rebalance during the wait took it away (it may come back later, and the client keeps its pause)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition

from broker.runtime import StreamWorker


class RebalancingConsumer:
    """Three partitions assigned; the poll of the wait revokes one of them."""

    def __init__(self) -> None:
        self.assigned = {("t", 0), ("t", 1), ("t", 2)}
        self.paused: set[tuple[str, int]] = set()

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self.assigned)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    def poll(self, _seconds: float) -> Any:
        self.assigned = {("t", 0), ("t", 1)}
        return None


def test_a_partition_revoked_while_paused_is_resumed_too() -> None:
    worker = StreamWorker.__new__(StreamWorker)
    consumer = RebalancingConsumer()
    worker.consumer = consumer  # type: ignore[assignment]
    worker._carried, worker._paused, worker.batch_size = [], set(), 10
    worker._wait_in_group(0.0)
    assert consumer.paused == {("t", 0), ("t", 1), ("t", 2)}
    worker._resume()
    assert consumer.paused == set()
