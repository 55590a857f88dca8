"""The AI worker publishes the decisions ready at one moment together, and a request's offset becomes
committable (and its slot free) only once the broker acknowledged its decision."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiworker.worker import AiWorker
from broker.producer import DeliveryError
from config.settings import AiSettings


class _Producer:
    """Acknowledges every call but the first ``refusals``."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls: list[list[tuple[str, bytes, str | bytes | None]]] = []

    async def send_all(self, records: Iterable[tuple[str, bytes, str | bytes | None]]) -> None:
        self.calls.append(list(records))
        if len(self.calls) <= self.refusals:
            raise DeliveryError("broker away")


async def test_decisions_ready_together_go_in_one_call_and_are_finished_only_once_acknowledged() -> None:
    worker = AiWorker(AiSettings(environment="test", kafka_bootstrap_servers="127.0.0.1:1", concurrency=4))
    producer = _Producer(refusals=1)
    worker.producer = producer  # type: ignore[assignment]
    try:
        for offset in (10, 11, 12):
            await worker._slots.acquire()
            worker.offsets.received("ai.requests", 0, offset)
            worker._ready.append((f"conv-{offset}", b"{}", ("ai.requests", 0, offset)))
        publishing = asyncio.create_task(worker._publish_ready())
        await asyncio.sleep(0)
        assert len(producer.calls) == 1  # refused: nothing finished, the next offset to commit is still the first
        assert worker.offsets.committable() == {("ai.requests", 0): 10} and worker._slots._value == 1
        await asyncio.wait_for(publishing, timeout=10)
        assert len(producer.calls) == 2 and [key for _, _, key in producer.calls[1]] == ["conv-10", "conv-11",
                                                                                         "conv-12"]
        assert worker.offsets.committable() == {("ai.requests", 0): 13}
        assert worker._slots._value == 4  # every slot free again
    finally:
        await worker.engine.dispose()
