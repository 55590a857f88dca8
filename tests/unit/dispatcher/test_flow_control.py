"""When the dispatcher pauses its bulk partitions: only for a reply that really waits for a worker, and for a buffer
full of requests that could go now (not of those waiting for their number's room or its account). And how it takes a
fetched batch in: a chunk at a time, the event loop let run between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from confluent_kafka import TopicPartition

from config.settings import DispatcherSettings
from dispatcher.lanes import Scheduler, Work
from dispatcher.service import ACCEPT_CHUNK, BULK_HELD_MAX, Dispatcher
from schemas.outbound import OutboundRequest
from tests.unit.broker.fakes import FakeMessage
from vault.cipher import Vault, generate_key_spec

BUFFER = 10


class Partitions:
    """Records the consumer's pause and resume calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.calls.append("pause")

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append("resume")


@pytest.fixture
async def dispatcher() -> AsyncIterator[Dispatcher]:
    keys = generate_key_spec("unit-1")
    made = Dispatcher(DispatcherSettings(environment="test", kafka_bootstrap_servers="127.0.0.1:1", vault_keys=keys,
                                         bulk_buffer=BUFFER), Vault.from_spec(keys))
    real = made.consumer
    made.consumer = Partitions()  # type: ignore[assignment]
    made._assigned = {(made.bulk_topic, 0)}
    try:
        yield made
    finally:
        real.close()
        await made.graph.aclose()
        await made.redis.aclose()
        await made.engine.dispose()


def _work(message_id: str, *, lane: str = "bulk", number: str = "pn") -> Work:
    request = OutboundRequest(event_id=message_id, tenant_id="t", message_id=message_id,
                              idempotency_key=f"t:{message_id}", phone_number_id=number, to=f"1{message_id}",
                              message={"type": "text", "text": {"body": message_id}}, lane=lane,
                              created_at=datetime.now(UTC))
    return Work(request, f"outbound.{lane}", 0, 0)


def _calls(dispatcher: Dispatcher) -> list[str]:
    assert isinstance(dispatcher.consumer, Partitions)
    return dispatcher.consumer.calls


async def test_a_reply_an_idle_worker_takes_does_not_pause_bulk(dispatcher: Dispatcher) -> None:
    idle = asyncio.create_task(dispatcher.scheduler.next())  # a worker waiting for work
    await asyncio.sleep(0)
    dispatcher.scheduler.add(_work("reply", lane="interactive"))  # accepted from a fetched batch
    await dispatcher._flow_control()
    assert _calls(dispatcher) == []
    assert (await asyncio.wait_for(idle, 1)).request.message_id == "reply"


async def test_a_reply_no_worker_can_take_pauses_bulk_until_one_does(dispatcher: Dispatcher) -> None:
    dispatcher.scheduler.add(_work("reply", lane="interactive"))  # every worker busy: none waits
    await dispatcher._flow_control()
    assert _calls(dispatcher) == ["pause"]
    await dispatcher.scheduler.next()
    await dispatcher._flow_control()
    assert _calls(dispatcher) == ["pause", "resume"]


async def test_requests_waiting_for_their_numbers_room_do_not_fill_the_buffer(dispatcher: Dispatcher) -> None:
    dispatcher.scheduler = Scheduler(number_cap=lambda number: 1 if number == "slow" else 100)
    for i in range(3 * BUFFER):
        dispatcher.scheduler.add(_work(f"s{i}", number="slow"))
    assert (await dispatcher.scheduler.next()).request.phone_number_id == "slow"  # the slow number is at its cap
    await dispatcher._flow_control()
    assert _calls(dispatcher) == []  # its other 29 go at its rate: others' requests behind them are still read
    for i in range(BUFFER):
        dispatcher.scheduler.add(_work(f"f{i}", number="fast"))
    await dispatcher._flow_control()
    assert _calls(dispatcher) == ["pause"]  # ten that could go now: the buffer is full
    for _ in range(BUFFER):
        await dispatcher.scheduler.next()
    await dispatcher._flow_control()
    assert _calls(dispatcher) == ["pause", "resume"]
    for i in range(BUFFER * BULK_HELD_MAX):
        dispatcher.scheduler.add(_work(f"t{i}", number="slow"))
    await dispatcher._flow_control()
    assert _calls(dispatcher) == ["pause", "resume", "pause"]  # all of them still have a bound


async def test_requests_of_a_held_number_do_not_fill_the_buffer(dispatcher: Dispatcher) -> None:
    """A number whose account cannot send: its requests wait for the reconnection, however long, and others'
    behind them are still read (before, they filled the buffer and stopped every tenant's campaigns)."""
    held = [_work(f"h{i}", number="held") for i in range(3 * BUFFER)]
    for work in held:
        dispatcher.scheduler.add(work)
    found = await dispatcher.scheduler.next()
    dispatcher.scheduler.hold_number(found, 60.0)  # its account turned out held
    await dispatcher._flow_control()
    assert _calls(dispatcher) == []
    assert dispatcher.scheduler.bulk_waiting_for_room == 3 * BUFFER


async def test_a_large_batch_is_accepted_in_chunks_with_the_event_loop_running_between(dispatcher: Dispatcher) -> None:
    """A batch of 500 accepted at once held the loop 9-10 ms: with a collection or a burst of answers on top, longer
    than the 25 ms a number's pacer makes up, so a campaign lost sends for good (``bench campaign``)."""
    batch = [FakeMessage(dispatcher.bulk_topic, 0, i, value=_work(f"m{i}").request.encode())
             for i in range(5 * ACCEPT_CHUNK)]
    seen: list[int] = []

    async def meanwhile() -> None:  # e.g. a worker whose slot came: it runs between two chunks
        while len(seen) < 3:
            seen.append(dispatcher.scheduler.queued_bulk)
            await asyncio.sleep(0)

    other = asyncio.create_task(meanwhile())
    await asyncio.sleep(0)
    await dispatcher._accept_all(batch)  # type: ignore[arg-type]
    await other
    assert dispatcher.scheduler.queued_bulk == len(batch)
    assert seen == [0, ACCEPT_CHUNK, 2 * ACCEPT_CHUNK]
