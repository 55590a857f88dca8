"""Login throttling in Redis: every attempt is counted, atomically, before the password is checked.

Three fixed-window counters (the first attempt starts the window: ``INCR``, then ``EXPIRE``), taken in
this order by one Lua script, which stops at the first one past its bound:

====================  =========  ===========  ==============================================================
counter               bound      window       what it stops
====================  =========  ===========  ==============================================================
(account, address)    5          15 minutes   guessing one account's password from one address
address               30         15 minutes   trying many accounts from one address
account               100        1 hour       guessing one account's password from many addresses
====================  =========  ===========  ==============================================================

A refused attempt answers 429 with ``Retry-After`` (the window's rest) without checking the password, even
the right one, and counts only against the counters up to the one that refused it. So 50 concurrent guesses
from one address get at most 5 password checks, and one address adds at most 5 attempts to the account's
counter per 15 minutes (20 an hour, under its 100): an attacker cannot lock a known admin out from one
address. A success takes its own attempt back from the address and the account and clears the pair (the
user's typos), so counters hold failures and attempts in flight. Accounts are keyed by a digest of the
email, so Redis holds no email addresses.
"""

from __future__ import annotations

import hashlib

from fastapi import HTTPException, status
from redis.asyncio import Redis

from config import redis_keys

PAIR_BOUND, PAIR_WINDOW_S = 5, 15 * 60
ADDRESS_BOUND, ADDRESS_WINDOW_S = 30, 15 * 60
ACCOUNT_BOUND, ACCOUNT_WINDOW_S = 100, 3600

# KEYS: pair, address, account; ARGV: bound and window of each, in that order. Returns 0 when the attempt
# may go on, else the seconds until the window of the counter that refused it ends.
_ATTEMPT = """
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  local ttl = redis.call('TTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[2 * i])
    redis.call('EXPIRE', key, ttl)
  end
  if n > tonumber(ARGV[2 * i - 1]) then
    return math.max(ttl, 1)
  end
end
return 0
"""
# KEYS: pair, address, account. The pair is cleared; the others give the attempt back where it is still counted.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if (tonumber(redis.call('GET', KEYS[i]) or '0')) > 0 then
    redis.call('DECR', KEYS[i])
  end
end
return 0
"""


def _keys(email: str, address: str) -> list[str]:
    digest = hashlib.sha256(email.encode()).hexdigest()
    return [redis_keys.login_attempts_pair(digest, address), redis_keys.login_attempts_address(address),
            redis_keys.login_attempts_account(digest)]


async def attempt(redis: Redis, *, email: str, address: str) -> None:
    """Count one login attempt; raise 429 (with ``Retry-After``) when it is past a bound."""
    bounds = (PAIR_BOUND, PAIR_WINDOW_S, ADDRESS_BOUND, ADDRESS_WINDOW_S, ACCOUNT_BOUND, ACCOUNT_WINDOW_S)
    keys = _keys(email, address)
    retry_after = int(await redis.eval(_ATTEMPT, len(keys), *keys, *bounds))
    if retry_after:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many login attempts, try again later",
                            headers={"Retry-After": str(retry_after)})


async def succeeded(redis: Redis, *, email: str, address: str) -> None:
    """The attempt had the right password: clear the pair, give the attempt back to the address and account."""
    keys = _keys(email, address)
    await redis.eval(_SUCCEEDED, len(keys), *keys)
