"""Rate limits on a real redis-server: the 1-second-window guarantee, sharing, pair, tier budget, slow-down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from dispatcher.ratelimit import RateLimiter, SlowDownPolicy


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of timestamps inside any half-open window ``[t, t + window)``."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def max_surely_in_window(spans: list[tuple[float, float]], window: float = 1.0) -> int:
    """The largest number of grants certainly inside one window ``[t, t + window)``: a grant happened at Redis
    between the call's start and its reply (``spans``), so one whose reply came late (a busy machine) is not
    counted in a window it may not belong to."""
    return max((sum(1 for b, a in spans if start <= b and a < start + window) for start, _ in spans), default=0)


async def drive(limiter: RateLimiter, number: str, rate: float, until: float,
                grants: list[tuple[float, float]]) -> None:
    """One sender: take slots as fast as the limiter allows until ``until``; each grant as (asked, answered)."""
    while (now := time.monotonic()) < until:
        wait = await limiter.acquire_number(number, rate)
        if wait == 0:
            grants.append((now, time.monotonic()))
        else:
            await asyncio.sleep(min(wait, until - now))


@pytest.fixture
async def second_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_number_never_exceeds_rate_in_any_second_and_keeps_throughput(
        redis_client: aioredis.Redis, second_client: aioredis.Redis, uid: str) -> None:
    rate, duration = 50, 3.0
    limiters = [RateLimiter(redis_client), RateLimiter(second_client)]  # two connections share the bucket
    per_limiter: list[list[tuple[float, float]]] = [[], []]
    until = time.monotonic() + duration
    await asyncio.gather(*(drive(limiters[i % 2], uid, rate, until, per_limiter[i % 2]) for i in range(8)))
    grants = per_limiter[0] + per_limiter[1]
    # One bucket for both connections: their grants together stay within the rate. Which connection wins a slot is a
    # race between senders woken at the same moment (in the dispatcher the pacer hands slots out instead), and one
    # connection's senders winning every slot of a run happened (1 run in 8): not asserted.
    assert max_surely_in_window(grants) <= rate
    # Throughput is measured by `aerostic bench dispatch`; here only a sanity floor that survives a busy machine.
    assert len(grants) >= 0.8 * rate * duration


async def test_no_startup_burst(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = RateLimiter(redis_client)
    waits = await asyncio.gather(*(limiter.acquire_number(uid, 50) for _ in range(60)))
    assert waits.count(0.0) <= 2  # a capacity-50 bucket would have let all 50 through at once
    assert all(0 < w <= 1.02 / 50 for w in waits if w)


async def test_reserve_books_distinct_paced_slots(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = RateLimiter(redis_client)

    async def book() -> float | None:
        delay = await limiter.reserve_number(uid, 50, max_wait_s=1.5)
        return None if delay is None else time.monotonic() + delay

    slots = await asyncio.gather(*(book() for _ in range(100)))
    booked = sorted(s for s in slots if s is not None)
    assert 74 <= len(booked) < 100  # slots 0, T, 2T, … up to 1.5 s ahead (T = 1.02 / 50), the rest refused
    assert max_in_window(booked) <= 50
    assert await limiter.acquire_number(uid, 50) > 1.4  # the polling API sees the booked slots


async def test_two_limiters_share_one_bucket(redis_client: aioredis.Redis, second_client: aioredis.Redis,
                                             uid: str) -> None:
    first, second = RateLimiter(redis_client), RateLimiter(second_client)
    assert await first.acquire_number(uid, 2) == 0
    assert await second.acquire_number(uid, 2) > 0.4
    assert await second.acquire_number(f"{uid}-other", 2) == 0


async def test_pair_burst_then_one_per_interval(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = RateLimiter(redis_client)
    waits = [await limiter.acquire_pair(uid, "15550001111") for _ in range(limiter.pair_burst + 1)]
    assert waits[:-1] == [0.0] * limiter.pair_burst
    assert 5.0 < waits[-1] <= 6.0
    assert await limiter.acquire_pair(uid, "15550002222") == 0  # other recipients are unaffected


async def test_penalize_pair(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = RateLimiter(redis_client)
    await limiter.penalize_pair(uid, "15550001111", 30)
    assert 29.0 < await limiter.acquire_pair(uid, "15550001111") <= 30.0


async def test_portfolio_budget_counts_unique_recipients(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = RateLimiter(redis_client)
    allowed = [await limiter.reserve_recipient(uid, f"1555{i:07d}", 250) for i in range(250)]
    assert all(allowed)
    assert not await limiter.reserve_recipient(uid, "15559999999", 250)
    assert await limiter.reserve_recipient(uid, "15550000007", 250)  # counted already: no new budget used
    assert await limiter.reserve_recipient(f"{uid}-other", "15559999999", 250)
    assert await limiter.reserve_recipient(uid, "15559999999", None)  # unlimited tier
    assert await redis_client.zcard(f"aer:tier:{uid}") == 250


async def test_slow_down_halves_and_recovers(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = RateLimiter(redis_client, slowdown=SlowDownPolicy(hold_s=0.1, growth_per_s=100.0))
    assert await limiter.effective_rate(uid, 80) == 80
    assert await limiter.slow_down(uid) == 0.5
    assert await limiter.slow_down(uid) == 0.5  # the same burst of 130429s counts once
    assert await limiter.effective_rate(uid, 80) == 40
    await asyncio.sleep(0.4)  # hold 0.1 s, then x100 per second: back to full well within 0.4 s
    assert await limiter.effective_rate(uid, 80) == 80


async def test_slow_down_floor_is_one_message_per_second(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = RateLimiter(redis_client, slowdown=SlowDownPolicy(hold_s=0.0, growth_per_s=1.0001))
    for _ in range(12):
        await limiter.slow_down(uid)
    assert await limiter.effective_rate(uid, 80) == 1.0
    assert await limiter.effective_rate(uid, 0.5) == 0.5  # never raised above the nominal rate


async def test_acquire_number_applies_slow_down(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = RateLimiter(redis_client, slowdown=SlowDownPolicy(hold_s=60.0))
    await limiter.slow_down(uid)
    assert await limiter.acquire_number(uid, 50) == 0
    wait = await limiter.acquire_number(uid, 50)
    assert 1.02 / 50 < wait <= 1.02 / 25  # paced at 25 msg/s, not 50


def test_tolerance_must_stay_below_margin() -> None:
    with pytest.raises(ValueError):
        RateLimiter(aioredis.Redis(), margin=0.01, tolerance_s=0.01)
    with pytest.raises(ValueError):
        SlowDownPolicy(multiplier=1.0)


async def test_reserve_slots_books_consecutive_slots_within_the_lookahead(redis_client: aioredis.Redis,
                                                                           uid: str) -> None:
    limiter = RateLimiter(redis_client)
    first = await limiter.reserve_slots(uid, 100, 50, max_wait_s=0.1)
    assert first.interval_s == pytest.approx(1.02 / 100)
    assert first.booked == 10 and first.delay_s == 0  # slots 0, T, … 9T ≤ 0.1 s; 10T is further
    second = await limiter.reserve_slots(uid, 100, 50, max_wait_s=0.05)
    assert second.booked == 0 and 0.05 < second.delay_s <= 10 * first.interval_s  # none due within 50 ms
    later = await limiter.reserve_slots(uid, 100, 3, max_wait_s=0.5)
    assert later.booked == 3 and later.delay_s == pytest.approx(10 * first.interval_s, abs=0.05)
    assert await limiter.acquire_number(uid, 100) > 12 * first.interval_s - 0.06  # the polling API sees them


async def test_a_reply_marks_its_number_and_bulk_bookings_then_reach_only_a_few_ms_ahead(
        redis_client: aioredis.Redis, second_client: aioredis.Redis, uid: str) -> None:
    """Two processes on one number: the campaign's books 20 ms of slots at a time, until the other books a reply.
    From then on the campaign's bookings reach only ``reply_ahead_s`` ahead, so the next reply waits behind that much
    of the campaign, not 20 ms of it; once the mark lapses, 20 ms again. The slots stay one interval apart throughout.
    """
    bulk = RateLimiter(redis_client, reply_ahead_s=0.004, reply_mark_s=0.3)
    replies = RateLimiter(second_client, reply_ahead_s=0.004, reply_mark_s=0.3)
    interval = 1.02 / 1000
    before = await bulk.reserve_slots(uid, 1000, 500, max_wait_s=0.02)
    assert before.booked == 20 and before.ahead_s == pytest.approx(0.02)
    reply = await replies.reserve_slots(uid, 1000, 1, max_wait_s=0.02, reply=True)
    assert reply.booked == 1 and reply.delay_s == pytest.approx(20 * interval, abs=0.005)  # behind the 20 booked
    marked = await bulk.reserve_slots(uid, 1000, 500, max_wait_s=0.02)
    assert marked.ahead_s == pytest.approx(0.004)
    assert marked.booked == 0 and marked.delay_s > 0.004  # the 21 slots ahead reach further than 4 ms
    await asyncio.sleep(0.025)  # those slots' time has come
    marked = await bulk.reserve_slots(uid, 1000, 500, max_wait_s=0.02)
    assert 1 <= marked.booked <= 6  # 4 ms of slots, and those whose time passed while the test slept
    second = await replies.reserve_slots(uid, 1000, 1, max_wait_s=0.02, reply=True)
    assert second.booked == 1 and second.delay_s <= 0.004 + 6 * interval
    own = await replies.reserve_slots(uid, 1000, 500, max_wait_s=0.02)
    assert own.ahead_s == pytest.approx(0.02)  # its own replies do not shorten a process's bulk bookings
    await asyncio.sleep(0.35)  # the mark lapses
    after = await bulk.reserve_slots(uid, 1000, 500, max_wait_s=0.02)
    assert after.booked >= 20 and after.ahead_s == pytest.approx(0.02)
