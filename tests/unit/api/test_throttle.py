"""api.throttle against a real Redis: attempts counted atomically before the check, three bounds, refunds."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from fastapi import HTTPException

from api import throttle
from api.throttle import ACCOUNT_BOUND, ADDRESS_BOUND, PAIR_BOUND


async def _tries(redis: aioredis.Redis, n: int, *, email: str, address: str) -> list[int]:
    """``n`` concurrent attempts: 0 for each let through, the Retry-After of each refused."""
    async def one() -> int:
        try:
            await throttle.attempt(redis, email=email, address=address)
        except HTTPException as exc:
            assert exc.status_code == 429 and exc.headers is not None
            return int(exc.headers["Retry-After"])
        return 0

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_concurrent_attempts_pass_the_pair_bound_exactly(redis_client: aioredis.Redis, uid: str) -> None:
    waits = await _tries(redis_client, 50, email=f"{uid}@a.test", address=f"10.0.0.1-{uid}")
    assert waits.count(0) == PAIR_BOUND
    assert all(0 < w <= throttle.PAIR_WINDOW_S for w in waits if w)


async def test_a_locked_pair_does_not_lock_the_account_elsewhere(redis_client: aioredis.Redis, uid: str) -> None:
    email = f"{uid}@a.test"
    for _ in range(4):
        await _tries(redis_client, 50, email=email, address=f"attacker-{uid}")
    # Refused attempts counted against the pair only: the account holds PAIR_BOUND, far below its bound.
    assert await _tries(redis_client, 1, email=email, address=f"owner-{uid}") == [0]


async def test_the_account_bound_holds_across_addresses(redis_client: aioredis.Redis, uid: str) -> None:
    email = f"{uid}@a.test"
    let_through = 0
    for i in range(ACCOUNT_BOUND // PAIR_BOUND + 2):
        let_through += (await _tries(redis_client, PAIR_BOUND, email=email, address=f"bot-{i}-{uid}")).count(0)
    assert let_through == ACCOUNT_BOUND
    waits = await _tries(redis_client, 1, email=email, address=f"owner-{uid}")
    assert 0 < waits[0] <= throttle.ACCOUNT_WINDOW_S


async def test_the_address_bound_holds_across_accounts(redis_client: aioredis.Redis, uid: str) -> None:
    let_through = 0
    for i in range(ADDRESS_BOUND // PAIR_BOUND + 2):
        let_through += (await _tries(redis_client, PAIR_BOUND, email=f"{i}-{uid}@a.test",
                                     address=f"sprayer-{uid}")).count(0)
    assert let_through == ADDRESS_BOUND
    assert (await _tries(redis_client, 1, email=f"new-{uid}@a.test", address=f"other-{uid}")) == [0]


async def test_a_success_gives_its_attempt_back(redis_client: aioredis.Redis, uid: str) -> None:
    email, address = f"{uid}@a.test", f"10.1.1.1-{uid}"
    for _ in range(3 * PAIR_BOUND):  # logging in again and again is never throttled
        assert await _tries(redis_client, 1, email=email, address=address) == [0]
        await throttle.succeeded(redis_client, email=email, address=address)
    pair, addr, account = throttle._keys(email, address)
    assert not await redis_client.exists(pair)
    assert await redis_client.mget([addr, account]) == [b"0", b"0"]  # nothing left counted
    assert not [k for k in await redis_client.keys(f"*{uid}*") if b"@" in k]  # no email in any key


async def test_failures_stay_counted_until_a_success_clears_the_pair(redis_client: aioredis.Redis,
                                                                     uid: str) -> None:
    email, address = f"{uid}@a.test", f"10.2.2.2-{uid}"
    assert (await _tries(redis_client, PAIR_BOUND - 1, email=email, address=address)).count(0) == PAIR_BOUND - 1
    assert await _tries(redis_client, 1, email=email, address=address) == [0]  # the right password, this time
    await throttle.succeeded(redis_client, email=email, address=address)
    assert (await _tries(redis_client, PAIR_BOUND, email=email, address=address)).count(0) == PAIR_BOUND


async def test_every_counter_gets_a_window(redis_client: aioredis.Redis, uid: str) -> None:
    email, address = f"{uid}@a.test", f"10.3.3.3-{uid}"
    pair, addr, account = throttle._keys(email, address)
    await redis_client.set(account, 3)  # left without a window (e.g. by an older version): repaired
    await _tries(redis_client, 1, email=email, address=address)
    ttls = [await redis_client.ttl(k) for k in (pair, addr, account)]
    windows = [throttle.PAIR_WINDOW_S, throttle.ADDRESS_WINDOW_S, throttle.ACCOUNT_WINDOW_S]
    assert all(0 < t <= w for t, w in zip(ttls, windows, strict=True)), ttls
    assert email not in pair and email not in account


def test_one_address_cannot_reach_the_account_bound() -> None:
    """One address adds at most PAIR_BOUND per pair window to the account's count: an hour of it stays under."""
    assert PAIR_BOUND * (throttle.ACCOUNT_WINDOW_S // throttle.PAIR_WINDOW_S) < ACCOUNT_BOUND
    assert PAIR_BOUND < ADDRESS_BOUND < ACCOUNT_BOUND
