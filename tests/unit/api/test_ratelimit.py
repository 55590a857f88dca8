"""api.ratelimit.Gcra on a real redis-server: the burst, then the sustained rate; refusals book nothing."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from api.ratelimit import Gcra, Rate, retry_after
from config import redis_keys


async def test_a_burst_passes_then_the_next_waits_one_interval(redis_client: aioredis.Redis, uid: str) -> None:
    gcra, key, rate = Gcra(redis_client), redis_keys.api_rate(uid), Rate(per_s=10, burst=5)
    started = time.monotonic()
    waits = [await gcra.take(key, rate) for _ in range(5)]
    assert waits == [0.0] * 5
    refused = await gcra.take(key, rate)
    elapsed = time.monotonic() - started
    # The next slot is one interval (0.1 s) after the burst began, less the time the six calls took.
    assert max(0.0, 0.1 - elapsed - 0.01) <= refused <= 0.1
    if elapsed < 0.08:
        assert refused > 0.0
    assert await redis_client.pttl(key) > 0  # the state expires on its own


async def test_refusals_book_nothing_and_the_rate_comes_back(redis_client: aioredis.Redis, uid: str) -> None:
    gcra, key, rate = Gcra(redis_client), redis_keys.api_rate(uid), Rate(per_s=2, burst=2)  # 0.5 s: slow machines too
    assert [await gcra.take(key, rate) for _ in range(2)] == [0.0, 0.0]
    refusals = [await gcra.take(key, rate) for _ in range(50)]
    assert all(wait > 0 for wait in refusals)
    assert refusals[-1] <= refusals[0]  # a flood of refusals does not push the next slot further away
    await asyncio.sleep(refusals[-1] + 0.01)
    assert await gcra.take(key, rate) == 0.0


async def test_the_sustained_rate_is_kept(redis_client: aioredis.Redis, uid: str) -> None:
    gcra, key, rate = Gcra(redis_client), redis_keys.api_rate(uid), Rate(per_s=50, burst=1)
    granted, start = 0, time.monotonic()
    while (elapsed := time.monotonic() - start) < 1.0:
        if await gcra.take(key, rate) == 0.0:
            granted += 1
    assert granted <= rate.per_s * elapsed + 1
    assert granted >= 0.5 * rate.per_s  # a floor that survives a busy machine


async def test_tenants_have_their_own_state(redis_client: aioredis.Redis, uid: str) -> None:
    gcra, rate = Gcra(redis_client), Rate(per_s=1, burst=1)
    assert await gcra.take(redis_keys.api_rate(f"{uid}-a"), rate) == 0.0
    assert await gcra.take(redis_keys.api_rate(f"{uid}-a"), rate) > 0
    assert await gcra.take(redis_keys.api_rate(f"{uid}-b"), rate) == 0.0


@pytest.mark.parametrize(("wait", "header"), [(0.001, "1"), (0.999, "1"), (1.0, "1"), (1.2, "2"), (59.01, "60")])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(wait: float, header: str) -> None:
    assert retry_after(wait) == header
