"""At-most-once sends: one Redis hash per idempotency key, written before and after the Graph call.

States: ``in_flight`` (an attempt began; if its owner died the outcome is unknown), ``accepted`` (final, holds
the wamid), ``failed`` (final, holds Meta's code and title) and ``deferred`` (Meta refused with a transient
error: nothing was sent, another attempt is safe). ``accepted`` is never overwritten. A new attempt on an
existing key goes through ``claim_retry``, a compare-and-set on the attempt count, so two processes can never
both retry the same key. Times come from the Redis server clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis as redis_sync

from config import redis_keys
from dispatcher.coalesce import ScriptHost

DEFAULT_TTL_S = 7 * 24 * 3600

_PRELUDE = """
local function now()
  local t = redis.call('TIME')
  return string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
end
local function record(key, t)
  local h = redis.call('HGETALL', key)
  table.insert(h, '_now')
  table.insert(h, t)
  return h
end
"""

# KEYS: record. ARGV: owner, ttl. nil when new (now in flight), else the record.
_BEGIN = _PRELUDE + """
local t = now()
if redis.call('EXISTS', KEYS[1]) == 1 then return record(KEYS[1], t) end
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'owner', ARGV[1], 'attempts', '1', 'ambiguous', '0',
           'created_at', t, 'updated_at', t)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return false
"""

# KEYS: record. ARGV: state, wamid, error_code, error_title, ambiguous, ttl. 0 when the record was accepted.
_FINISH = _PRELUDE + """
local t = now()
local current = redis.call('HGET', KEYS[1], 'state')
if current == 'accepted' then return 0 end
if not current then
  redis.call('HSET', KEYS[1], 'owner', '', 'attempts', '1', 'ambiguous', '0', 'created_at', t)
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', t)
redis.call('HDEL', KEYS[1], 'wamid', 'error_code', 'error_title')
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'wamid', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error_code', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error_title', ARGV[4]) end
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'ambiguous', '1') end
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6])) end
return 1
"""

# KEYS: record. ARGV: owner, expected attempts. 1 when this caller now owns a new attempt.
_CLAIM = _PRELUDE + """
local v = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if v[1] ~= 'in_flight' and v[1] ~= 'deferred' then return 0 end
if v[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'owner', ARGV[1], 'attempts', tostring(tonumber(v[2]) + 1),
           'updated_at', now())
return 1
"""

_MARK = _PRELUDE + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'ambiguous', '1', 'updated_at', now())
return 1
"""

# KEYS: record, epoch. ARGV: owner, ttl. Like _BEGIN, plus '_epoch' (a missing epoch is set to now: Redis was lost).
_BEGIN_EPOCH = _PRELUDE + """
local t = now()
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = t
  redis.call('SET', KEYS[2], t)
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local r = record(KEYS[1], t)
  table.insert(r, '_epoch')
  table.insert(r, epoch)
  return r
end
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'owner', ARGV[1], 'attempts', '1', 'ambiguous', '0',
           'created_at', t, 'updated_at', t)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {'_epoch', epoch}
"""

_GET = _PRELUDE + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return record(KEYS[1], now())
"""


def mark_epoch(redis_url: str) -> None:
    """Record when this Redis's idempotency state began (``aerostic migrate``); an existing mark stays.

    A dispatcher that later finds the mark missing knows Redis lost its records: a request older than
    the new mark may already have been sent, so its one possible repeat is counted as ambiguous.
    """
    client = redis_sync.Redis.from_url(redis_url)
    try:
        client.set(redis_keys.idempotency_epoch(), f"{time.time():.6f}", nx=True)
    finally:
        client.close()


class State(StrEnum):
    IN_FLIGHT = "in_flight"
    ACCEPTED = "accepted"
    FAILED = "failed"
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class Record:
    """One key's record; ``age_s`` is the time since its last write, by the Redis clock."""

    state: State
    owner: str
    attempts: int
    ambiguous: bool
    wamid: str | None
    error_code: int | None
    error_title: str | None
    created_at: float
    updated_at: float
    age_s: float

    @property
    def in_flight(self) -> bool:
        return self.state is State.IN_FLIGHT

    @property
    def final(self) -> bool:
        return self.state in (State.ACCEPTED, State.FAILED)


class IdempotencyStore:
    """Records each send's idempotency key in Redis before and after the Graph call."""

    def __init__(self, redis: ScriptHost, *, ttl_s: int = DEFAULT_TTL_S) -> None:
        """``redis``: a client, or a ``ScriptBatcher`` that pipelines the calls of concurrent senders."""
        self.ttl_s = ttl_s
        self._begin = redis.register_script(_BEGIN)
        self._finish = redis.register_script(_FINISH)
        self._claim = redis.register_script(_CLAIM)
        self._mark = redis.register_script(_MARK)
        self._get = redis.register_script(_GET)
        self._begin_epoch = redis.register_script(_BEGIN_EPOCH)

    async def begin_since(self, key: str, *, owner: str, ttl_s: int | None = None) -> tuple[Record | None, float]:
        """``begin``, plus the epoch of the state it checked: a record older than that may have been lost."""
        reply = await self._begin_epoch(keys=[redis_keys.idempotency(key), redis_keys.idempotency_epoch()],
                                        args=[owner, ttl_s or self.ttl_s])
        flat = [_text(v) for v in reply]
        epoch = float(flat[flat.index("_epoch") + 1])
        rest = flat[:flat.index("_epoch")]
        return (_parse(rest) if rest else None), epoch

    async def begin(self, key: str, *, owner: str, ttl_s: int | None = None) -> Record | None:
        """Mark ``key`` in flight and return None if it is new; otherwise return its record untouched."""
        reply = await self._begin(keys=[redis_keys.idempotency(key)], args=[owner, ttl_s or self.ttl_s])
        return _parse(reply)

    async def finish(self, key: str, *, state: State | str, wamid: str | None = None, error_code: int | None = None,
                     error_title: str | None = None, ambiguous: bool = False) -> bool:
        """Record the outcome; False (nothing written) when the key was already accepted."""
        final = State(state)
        if final is State.IN_FLIGHT:
            raise ValueError("finish needs accepted, failed or deferred")
        args = [final.value, wamid or "", "" if error_code is None else str(error_code), error_title or "",
                "1" if ambiguous else "0", self.ttl_s]
        return int(await self._finish(keys=[redis_keys.idempotency(key)], args=args)) == 1

    async def mark_ambiguous(self, key: str) -> bool:
        """Flag that an attempt's outcome was unknown (timeout after sending); False when there is no record."""
        return int(await self._mark(keys=[redis_keys.idempotency(key)])) == 1

    async def claim_retry(self, key: str, *, owner: str, attempts: int) -> bool:
        """Start attempt ``attempts + 1`` if the record is in flight or deferred and still at ``attempts``."""
        return int(await self._claim(keys=[redis_keys.idempotency(key)], args=[owner, attempts])) == 1

    async def get(self, key: str) -> Record | None:
        return _parse(await self._get(keys=[redis_keys.idempotency(key)]))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(reply: Any) -> Record | None:
    if not reply:
        return None
    flat = [_text(v) for v in reply]
    h = dict(zip(flat[::2], flat[1::2], strict=True))
    updated = float(h.get("updated_at", "0"))
    return Record(
        state=State(h["state"]), owner=h.get("owner", ""), attempts=int(h.get("attempts", "1")),
        ambiguous=h.get("ambiguous") == "1", wamid=h.get("wamid"),
        error_code=int(h["error_code"]) if "error_code" in h else None, error_title=h.get("error_title"),
        created_at=float(h.get("created_at", "0")), updated_at=updated,
        age_s=max(0.0, float(h["_now"]) - updated),
    )
