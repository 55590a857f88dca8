"""The AI worker forgets revoked partitions: it never commits for them, so its commits keep succeeding."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from aiworker.worker import AiWorker
from config.settings import AiSettings


async def test_revoked_partitions_are_forgotten_before_the_next_commit() -> None:
    worker = AiWorker(AiSettings(environment="test", kafka_bootstrap_servers="127.0.0.1:1"))
    try:
        for partition in (0, 1):
            worker.offsets.received("ai.requests", partition, 10)
            worker.offsets.finished("ai.requests", partition, 10)
        worker._on_revoke(worker.consumer, [TopicPartition("ai.requests", 1)])
        worker._forget_revoked()
        assert worker.offsets.committable() == {("ai.requests", 0): 11}
    finally:
        await worker.engine.dispose()
