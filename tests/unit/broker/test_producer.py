"""broker.producer: a producer whose appends keep failing is replaced (a broker that lost its state never gives
the old producer id back), and what was in flight is failed so its senders answer 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from confluent_kafka import KafkaError

from broker.producer import (
    BUSY_APPENDS,
    BUSY_POLL_S,
    IDLE_POLL_S,
    POLL_S,
    REPLACE_AFTER_FAILURES,
    AsyncProducer,
    DeliveryError,
)


async def test_a_failure_streak_replaces_the_producer_and_fails_what_was_in_flight() -> None:
    producer = AsyncProducer("127.0.0.1:1", delivery_timeout_ms=60_000)
    await producer.start()
    try:
        waiting = asyncio.create_task(producer.send("t", b"v", b"k"))
        await asyncio.sleep(0)  # the append is queued and pending
        first = producer._producer
        timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)
        producer._watch_failures([(asyncio.get_running_loop().create_future(), timed_out)]
                                 * (REPLACE_AFTER_FAILURES - 1))
        assert producer._producer is first  # a short streak is the broker's business
        producer._watch_failures([(asyncio.get_running_loop().create_future(), None)])
        producer._watch_failures([(asyncio.get_running_loop().create_future(), timed_out)]
                                 * (REPLACE_AFTER_FAILURES - 1))
        assert producer._producer is first  # a success in between starts the count again
        producer._watch_failures([(asyncio.get_running_loop().create_future(), timed_out)])
        assert producer._producer is not first
        with pytest.raises(DeliveryError):
            await asyncio.wait_for(waiting, 5)
    finally:
        await producer.stop(flush_seconds=0)


@pytest.mark.parametrize("poll_in_loop", [False, True])
async def test_send_all_waits_for_every_record_then_raises_the_failure_and_forgets_them(poll_in_loop: bool) -> None:
    producer = AsyncProducer("127.0.0.1:1", delivery_timeout_ms=300, poll_in_loop=poll_in_loop)
    producer._wait_limit = 600.0  # the sweeper stays out of it: the failures come from librdkafka's reports
    await producer.start()
    try:
        sending = asyncio.create_task(producer.send_all([("t", b"a", b"k"), ("t", b"b", None), ("u", b"c", "k")]))
        await asyncio.sleep(0)  # the three appends are queued and pending
        assert len(producer._pending) == 3
        with pytest.raises(DeliveryError):
            await asyncio.wait_for(sending, 60)
        assert producer._pending == {}
        assert (producer._thread is None) is poll_in_loop  # the loop served the reports itself, or the thread did
    finally:
        await producer.stop(flush_seconds=0)


async def test_polled_in_the_loop_a_send_re_arms_the_idle_timer_and_is_answered_soon() -> None:
    producer = AsyncProducer("127.0.0.1:1", delivery_timeout_ms=200, poll_in_loop=True)
    producer._wait_limit = 600.0
    await producer.start()
    try:
        assert producer._timer_idle  # nothing waits: the loop polls every IDLE_POLL_S
        sending = asyncio.create_task(producer.send("t", b"v", b"k"))
        await asyncio.sleep(0)
        assert not producer._timer_idle  # the append re-armed it to poll once its linger has passed
        with pytest.raises(DeliveryError):
            await asyncio.wait_for(sending, 5)  # librdkafka's timeout (200 ms), reported within a poll
    finally:
        await producer.stop(flush_seconds=0)


@pytest.fixture
async def looped() -> AsyncIterator[AsyncProducer]:
    """A started producer polled in the loop, whose appends would wait a minute for librdkafka's own timeout."""
    producer = AsyncProducer("127.0.0.1:1", delivery_timeout_ms=60_000, poll_in_loop=True)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop(flush_seconds=0)


async def test_an_append_is_forgotten_when_its_report_settles_it_even_if_nobody_awaits_it_any_more(
        looped: AsyncProducer) -> None:
    acked, refused, abandoned = (looped.append("t", b"v", b"k") for _ in range(3))
    abandoned.cancel()  # its sender was cancelled: the report still comes, and must not leak the entry
    assert set(looped._pending) == {acked, refused, abandoned}
    looped._resolve([(acked, None), (refused, KafkaError(KafkaError._MSG_TIMED_OUT)), (abandoned, None)])
    assert looped._pending == {}
    assert acked.result() is None
    with pytest.raises(DeliveryError):
        refused.result()


async def test_an_append_without_a_report_in_time_fails_and_is_forgotten(looped: AsyncProducer) -> None:
    overdue = looped.append("t", b"v", b"k")
    looped._pending[overdue] = asyncio.get_running_loop().time() - 1  # its deadline has passed
    with pytest.raises(DeliveryError, match="no delivery report in time"):
        await asyncio.wait_for(overdue, 5)  # the sweeper's next round
    assert overdue not in looped._pending


async def test_the_loop_polls_sooner_while_many_appends_wait(looped: AsyncProducer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each poll wakes the loop: every ``POLL_S`` while few appends wait, every ``BUSY_POLL_S`` from
    ``BUSY_APPENDS`` on, and at ``IDLE_POLL_S`` once none does."""
    armed: list[float] = []
    monkeypatch.setattr(looped, "_arm", armed.append)

    def poll() -> float:
        looped._on_timer()
        return armed[-1]

    futures = [looped.append("t", b"v", b"k")]
    after_one = poll()
    futures += [looped.append("t", b"v", b"k") for _ in range(BUSY_APPENDS - 2)]
    after_fewer = poll()
    futures.append(looped.append("t", b"v", b"k"))
    after_many = poll()
    looped._resolve([(future, None) for future in futures])
    assert [after_one, after_fewer, after_many, poll()] == [POLL_S, POLL_S, BUSY_POLL_S, IDLE_POLL_S]
