"""The stream runtime's asynchronous commits on a real broker: what a worker handled is committed while it runs
(without a stop), a stopped worker commits its last batches before it leaves the group, so the next worker of the
group starts right after them (nothing handled twice, nothing skipped), and a member joining the group takes over
partitions from where the first one's revoke committed them.

Runs ``StreamWorker``s in the test process with a topic prefix of their own (their own topics and group ids on the
shared broker)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from broker.consumer import consumer_config
from broker.producer import AsyncProducer
from broker.runtime import Output, StreamWorker
from config.settings import CoreSettings
from schemas.catalogue import ROUTER_GROUP, WEBHOOKS_RAW
from stack.launcher import LocalStack
from stack.topics import create_topics
from tests.integration.helpers import wait_for


class Recorder:
    """Publishes nothing; records each value once its batch is saved."""

    group_id = ROUTER_GROUP

    def __init__(self, prefix: str) -> None:
        self.topics = [WEBHOOKS_RAW.full_name(prefix)]
        self.handled: list[bytes] = []
        self._batch: list[bytes] = []

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        self._batch = [m.value() or b"" for m in batch]
        return []

    async def saved(self) -> None:
        self.handled.extend(self._batch)


class Workers:
    """Starts and stops workers of one group on a prefix of its own."""

    def __init__(self, stack: LocalStack, settings: CoreSettings, producer: AsyncProducer) -> None:
        self.stack, self.settings, self.producer = stack, settings, producer
        self.topic = WEBHOOKS_RAW.full_name(settings.topic_prefix)
        self.running: list[tuple[StreamWorker, asyncio.Task[None]]] = []

    def start(self) -> Recorder:
        processor = Recorder(self.settings.topic_prefix)
        worker = StreamWorker(processor, self.producer, self.settings, batch_size=2, batch_wait_s=0.05)
        self.running.append((worker, asyncio.create_task(worker.run())))
        return processor

    async def stop(self, index: int) -> None:
        worker, task = self.running[index]
        worker.stop()
        await asyncio.wait_for(task, 30)

    async def produce(self, values: list[bytes], key: bytes = b"same-key") -> None:
        for value in values:  # one at a time: in order, in one partition
            await self.producer.send(self.topic, value, key)

    def committed(self) -> int:
        """The group's committed offset summed over the topic's partitions (a reader of the group, not a member)."""
        reader = Consumer(consumer_config(self.settings, ROUTER_GROUP))
        try:
            answer = reader.committed([TopicPartition(self.topic, p) for p in range(WEBHOOKS_RAW.partitions)],
                                      timeout=10)
        finally:
            reader.close()
        return sum(max(0, tp.offset) for tp in answer)


@pytest.fixture
async def workers(stack: LocalStack) -> AsyncIterator[Workers]:
    prefix = f"cm{uuid.uuid4().hex[:8]}."
    await asyncio.to_thread(create_topics, stack.kafka, prefix)
    settings = CoreSettings(environment="test", kafka_bootstrap_servers=stack.kafka, database_url=stack.database_url,
                            redis_url=stack.redis_url, topic_prefix=prefix)
    async with AsyncProducer(stack.kafka) as producer:
        group = Workers(stack, settings, producer)
        yield group
        for worker, task in group.running:
            worker.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 30)


async def test_what_was_handled_is_committed_while_running_and_at_stop(workers: Workers) -> None:
    first = workers.start()
    values = [f"v{i}".encode() for i in range(9)]
    await workers.produce(values)
    await wait_for(lambda: asyncio.sleep(0, first.handled == values), timeout=60, what="the nine records handled")

    async def all_committed() -> bool:
        return await asyncio.to_thread(workers.committed) == len(values)

    await wait_for(all_committed, timeout=30, what="the handled records committed by the running worker")
    await workers.stop(0)

    later = [f"w{i}".encode() for i in range(5)]
    await workers.produce(later)
    second = workers.start()
    await wait_for(lambda: asyncio.sleep(0, len(second.handled) >= len(later)), timeout=60,
                   what="the later records handled by the next worker")
    assert second.handled == later  # started right after the commit: nothing again, nothing skipped


async def test_a_stop_right_after_a_batch_commits_it_before_leaving_the_group(workers: Workers) -> None:
    first = workers.start()
    values = [f"s{i}".encode() for i in range(7)]
    await workers.produce(values)
    await wait_for(lambda: asyncio.sleep(0, first.handled == values), timeout=60, what="the seven records handled")
    await workers.stop(0)  # the last batch's asynchronous commit may be unanswered: the revoke of close commits it
    assert await asyncio.to_thread(workers.committed) == len(values)

    second = workers.start()
    await workers.produce([b"after"])
    await wait_for(lambda: asyncio.sleep(0, bool(second.handled)), timeout=60, what="the next record handled")
    assert second.handled == [b"after"]


async def test_a_member_joining_takes_over_where_the_revoke_committed(workers: Workers) -> None:
    first = workers.start()
    keys = [f"key-{i}".encode() for i in range(12)]  # spread over the topic's partitions
    before = [f"b{i}".encode() for i in range(12)]
    for key, value in zip(keys, before, strict=True):
        await workers.produce([value], key)
    await wait_for(lambda: asyncio.sleep(0, sorted(first.handled) == sorted(before)), timeout=60,
                   what="the first records handled")
    second = workers.start()  # a rebalance: the first member's partitions are revoked, some go to the second

    async def both_assigned() -> bool:
        return all(bool(w.consumer.assignment()) for w, _ in workers.running)

    await wait_for(both_assigned, timeout=60, what="the partitions shared by both members")
    after = [f"a{i}".encode() for i in range(12)]
    for key, value in zip(keys, after, strict=True):
        await workers.produce([value], key)
    await wait_for(lambda: asyncio.sleep(0, len(first.handled) + len(second.handled) >= 24), timeout=60,
                   what="the later records handled")
    assert sorted(first.handled + second.handled) == sorted(before + after)  # nothing twice, nothing skipped
    assert second.handled and set(second.handled) <= set(after)
