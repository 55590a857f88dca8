"""Each tenant's request rate on the tenant API: GCRA in Redis, one atomic Lua call per request.

A tenant may make ``per_s`` requests a second, sustained, and ``burst`` at once. GCRA keeps one number
per tenant, the theoretical arrival time (TAT) of its next request, on the Redis server's clock (so every
replica agrees): a request at ``now`` passes when ``TAT - now <= (burst - 1) / per_s`` and pushes TAT to
``max(TAT, now) + 1 / per_s``; otherwise it is answered 429 with ``Retry-After`` (whole seconds, at least 1)
and TAT does not move, so a flood that stops is served again as soon as its rate allows.

A refusal must cost next to nothing, or one tenant's flood would slow every other tenant down. So a
credential that authenticated in the last ``KNOWN_S`` seconds has its tenant remembered (by the SHA-256 of
the credential, never the credential), and its requests are checked against the rate *before* the database
is asked who they are. Once Redis has refused a tenant, this process goes on refusing it, without asking
Redis, until the ``Retry-After`` it was given (at least the wait Redis named: a client that honours it
loses nothing, one that floods is held off at the door, see ``api.gate``). The remembered tenant only
chooses the bucket: a request that passes is still authenticated against the database, and a credential
that fails there is forgotten.

A tenant's limits are its row in ``tenants`` (``api_rate_per_s``, ``api_rate_burst``; NULL takes the
platform's ``AEROSTIC_API_RATE_PER_S`` / ``AEROSTIC_API_RATE_BURST``), read at most once per ``CACHE_S``
per process; ``PUT /admin/tenants/{id}/rate-limit`` takes effect at once on the replica that served it.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import TypeVar

from fastapi import HTTPException, status
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from config import redis_keys
from config.settings import IngressSettings
from db.tables import tenants

CACHE_S = 10.0
KNOWN_S = 10.0
MAX_ENTRIES = 10_000  # of each in-memory map; past it a map starts over (that many tenants within seconds)

# KEYS: the tenant's TAT. ARGV: interval (1 / rate), tolerance ((burst - 1) * interval).
# Returns "0" when the request may go (and books it), else the seconds until it could.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return tostring(wait) end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return '0'
"""

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Rate:
    per_s: float
    burst: int


class Gcra:
    """The GCRA of one Redis key per client."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_GCRA)

    async def take(self, key: str, rate: Rate) -> float:
        """Book one request on ``key``: 0.0 when it may go, else the seconds until it could (nothing booked)."""
        interval = 1.0 / rate.per_s
        return float(await self._script(keys=[key], args=[repr(interval), repr((rate.burst - 1) * interval)]))


def retry_after(wait_s: float) -> str:
    """``Retry-After`` for a wait: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait_s)))


class TenantRateLimiter:
    """Checks (and books) one request of a tenant; what it learns is kept in memory for a few seconds."""

    def __init__(self, engine: AsyncEngine, redis: Redis, settings: IngressSettings) -> None:
        self._engine = engine
        self._default = Rate(settings.api_rate_per_s, settings.api_rate_burst)
        self._gcra = Gcra(redis)
        self._rates: dict[str, tuple[float, Rate]] = {}  # tenant -> (until, its limits)
        self._blocked: dict[str, float] = {}  # tenant -> refused until (monotonic)
        self._known: dict[bytes, tuple[float, str]] = {}  # digest of a credential -> (until, its tenant)

    async def check(self, tenant_id: str) -> None:
        """Book one request of ``tenant_id``, or raise 429 with ``Retry-After``."""
        now = time.monotonic()
        blocked = self._blocked.get(tenant_id, 0.0)
        if blocked > now:
            raise _too_many(blocked - now)
        wait = await self._gcra.take(redis_keys.api_rate(tenant_id), await self.rate(tenant_id))
        if wait > 0:
            _put(self._blocked, tenant_id, now + int(retry_after(wait)))
            raise _too_many(wait)

    async def rate(self, tenant_id: str) -> Rate:
        """The tenant's limits (its own, else the platform's default)."""
        now = time.monotonic()
        cached = self._rates.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(tenants.c.api_rate_per_s, tenants.c.api_rate_burst)
                                      .where(tenants.c.id == tenant_id))).first()
        per_s, burst = (row.api_rate_per_s, row.api_rate_burst) if row is not None else (None, None)
        rate = Rate(self._default.per_s if per_s is None else per_s, self._default.burst if burst is None else burst)
        _put(self._rates, tenant_id, (now + CACHE_S, rate))
        return rate

    def forget(self, tenant_id: str) -> None:
        """Read the tenant's limits again on its next request (they were just changed)."""
        self._rates.pop(tenant_id, None)
        self._blocked.pop(tenant_id, None)

    def refused_for(self, credential: str) -> float:
        """Seconds this process will still refuse the tenant ``credential`` lately authenticated as (0: none)."""
        tenant_id = self.known_tenant(credential)
        return 0.0 if tenant_id is None else max(self._blocked.get(tenant_id, 0.0) - time.monotonic(), 0.0)

    def known_tenant(self, credential: str) -> str | None:
        """The tenant ``credential`` authenticated as within the last ``KNOWN_S`` seconds, if it did."""
        known = self._known.get(_digest(credential))
        return known[1] if known is not None and known[0] > time.monotonic() else None

    def remember(self, credential: str, tenant_id: str) -> None:
        """``credential`` just authenticated as ``tenant_id``."""
        _put(self._known, _digest(credential), (time.monotonic() + KNOWN_S, tenant_id))

    def forget_credential(self, credential: str) -> None:
        """``credential`` failed to authenticate (revoked, expired)."""
        self._known.pop(_digest(credential), None)


def _digest(credential: str) -> bytes:
    return hashlib.sha256(credential.encode()).digest()


def _put(entries: dict[K, V], key: K, value: V) -> None:
    if len(entries) >= MAX_ENTRIES and key not in entries:
        entries.clear()
    entries[key] = value


TOO_MANY = "too many requests for this tenant, slow down"


def _too_many(wait_s: float) -> HTTPException:
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, TOO_MANY, headers={"Retry-After": retry_after(wait_s)})
