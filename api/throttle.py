"""Login throttling in Redis: failed attempts counted per account and per client address.

Fixed windows: the first failure starts a 15-minute window (``INCR`` then ``EXPIRE``). An
account with 5 failures, or an address with 20, is refused with 429 and ``Retry-After`` until
its window ends, even with the right password. A success clears the account's count, never the
address's. Accounts are keyed by a digest of the email so Redis holds no email addresses.
"""

from __future__ import annotations

import hashlib

from fastapi import HTTPException, status
from redis.asyncio import Redis

from config import redis_keys

WINDOW_S = 15 * 60
MAX_ACCOUNT_FAILURES = 5
MAX_ADDRESS_FAILURES = 20


def _keys(email: str, address: str) -> tuple[str, str]:
    digest = hashlib.sha256(email.encode()).hexdigest()
    return redis_keys.login_failures_account(digest), redis_keys.login_failures_address(address)


async def check(redis: Redis, *, email: str, address: str) -> None:
    """Raise 429 when the account or the address has failed too often in its window."""
    account, addr = _keys(email, address)
    async with redis.pipeline(transaction=False) as pipe:
        for key in (account, addr):
            pipe.get(key)
            pipe.ttl(key)
        account_n, account_ttl, addr_n, addr_ttl = await pipe.execute()
    waits = [int(ttl) for n, ttl, limit in ((account_n, account_ttl, MAX_ACCOUNT_FAILURES),
                                            (addr_n, addr_ttl, MAX_ADDRESS_FAILURES))
             if n is not None and int(n) >= limit]
    if waits:
        retry_after = max(waits) if max(waits) > 0 else WINDOW_S  # a TTL of -1: the window is being set
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins, try again later",
                            headers={"Retry-After": str(retry_after)})


async def record_failure(redis: Redis, *, email: str, address: str) -> None:
    """Count one failed login against the account and the address."""
    account, addr = _keys(email, address)
    async with redis.pipeline(transaction=True) as pipe:
        for key in (account, addr):
            pipe.incr(key)
            pipe.ttl(key)
        _, account_ttl, _, addr_ttl = await pipe.execute()
    # Set the window only where none is running; this also repairs a counter left without one.
    for key, ttl in ((account, account_ttl), (addr, addr_ttl)):
        if int(ttl) < 0:
            await redis.expire(key, WINDOW_S)


async def record_success(redis: Redis, *, email: str) -> None:
    """Clear the account's failures (the address keeps its count)."""
    await redis.delete(_keys(email, "")[0])
