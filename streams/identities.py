"""The router's identity book: every customer identity (a number or a BSUID) → the person's one identity.

The rule is ``schemas.identity.canonical``. Records are written once and never re-pointed, so they are
cached without expiry in memory (bounded), in Redis and, durably, in PostgreSQL's ``contact_identities``:
a batch's new records are inserted there first (``ON CONFLICT DO NOTHING``, the winners read back in the same
statement, so two routers meeting the same person at once agree on the winner), then in Redis with the router's
own writes once its batch is published (``cache_commands``). A lookup tries memory, then Redis (one ``MGET``), then
PostgreSQL (one query) for what Redis lacks, so a lost Redis costs a query, never a second conversation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol

import asyncpg
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from config import redis_keys
from db.raw_pool import raw_pool
from db.redis_wire import Command, redis_wire
from schemas.identity import Identity, canonical

MEMORY_MAX = 100_000  # records kept in memory (least recently used dropped)
UNCACHED_MAX = 10_000  # records waiting to be written to Redis (more are left to PostgreSQL)
REDIS_TTL_S = 90 * 24 * 3600  # PostgreSQL keeps them
Person = tuple[str, Identity]  # (tenant id, what one webhook says of a customer)
Key = tuple[str, str]  # (tenant id, identity)


class DurableIdentities(Protocol):
    """Where identity records outlive Redis."""

    async def load(self, keys: Collection[Key]) -> dict[Key, str]:
        """The records of those of ``keys`` that have one."""

    async def record(self, new: Mapping[Key, str]) -> dict[Key, str]:
        """Insert ``new`` where nothing is recorded yet (first writer wins); what is recorded for each key (a key
        another writer is recording at that moment may be missing: its record is read again)."""


# Bound arrays, so a batch's keys go in one statement (prepared once per connection); run on the raw pool.
READ_IDENTITIES = (
    "SELECT i.tenant_id, i.identity, i.canonical FROM contact_identities AS i "
    "JOIN unnest($1::uuid[], $2::text[]) AS k(tenant_id, identity) "
    "ON i.tenant_id = k.tenant_id AND i.identity = k.identity")
# New records and, for keys recorded before, the records that won, in one statement. A key another router is
# inserting at the same moment (committed after this statement's snapshot) is in neither part: the caller finds it
# missing, as if that router had won, and resolves again.
RECORD_IDENTITIES = (
    "WITH inserted AS (INSERT INTO contact_identities (tenant_id, identity, canonical) "
    "SELECT r.tenant_id, r.identity, r.canonical FROM unnest($1::uuid[], $2::text[], $3::text[]) "
    "WITH ORDINALITY AS r(tenant_id, identity, canonical, n) ORDER BY r.n "
    "ON CONFLICT DO NOTHING RETURNING tenant_id, identity, canonical) "
    "SELECT tenant_id, identity, canonical FROM inserted UNION ALL "
    "SELECT i.tenant_id, i.identity, i.canonical FROM contact_identities AS i "
    "JOIN unnest($1::uuid[], $2::text[]) AS k(tenant_id, identity) "
    "ON i.tenant_id = k.tenant_id AND i.identity = k.identity")


class PostgresIdentities:
    """``DurableIdentities`` in PostgreSQL's ``contact_identities``: one statement per batch each way, each on its own
    (autocommit) on the engine's raw pool (``db.raw_pool``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.pool = raw_pool(engine)

    async def load(self, keys: Collection[Key]) -> dict[Key, str]:
        wanted = list(keys)
        return _records(await self.pool.fetch(READ_IDENTITIES, [t for t, _ in wanted], [n for _, n in wanted]))

    async def record(self, new: Mapping[Key, str]) -> dict[Key, str]:
        ordered = sorted(new.items())  # rows locked in key order: two routers never deadlock
        return _records(await self.pool.fetch(RECORD_IDENTITIES, [t for (t, _), _ in ordered],
                                              [n for (_, n), _ in ordered], [c for _, c in ordered]))


def _records(rows: Iterable[asyncpg.Record]) -> dict[Key, str]:
    """(tenant id, identity) → canonical identity, of rows of both statements."""
    return {(str(t), n): c for t, n, c in rows}


class IdentityBook:
    """Resolves customers to their one identity per tenant, recording new identities on the way."""

    def __init__(self, redis: Redis, durable: DurableIdentities, *, memory_max: int = MEMORY_MAX) -> None:
        self.wire = redis_wire(redis)
        self.durable = durable
        self._memory: OrderedDict[Key, str] = OrderedDict()
        self._memory_max = memory_max
        self.uncached: dict[Key, str] = {}  # read from or written to PostgreSQL, not yet to Redis

    async def resolve(self, people: Sequence[Person], *, attempts: int = 3) -> list[str]:
        """The one identity of each person, in order; new identities are recorded before this returns."""
        names = {(tenant, n) for tenant, identity in people for n in identity.names}
        known = await self._lookup(names)
        chosen: list[str] = []
        new: dict[Key, str] = {}
        for tenant, identity in people:
            mine = {n: known[(tenant, n)] for n in identity.names if (tenant, n) in known}
            mine |= {n: c for (t, n), c in new.items() if t == tenant and n in identity.names and n not in mine}
            person, records = canonical(identity, mine)
            chosen.append(person)
            new.update({(tenant, n): c for n, c in records.items()})
        if new:
            winners = await self._record(new)
            lost = any(winners.get(k) != c for k, c in new.items())  # another router recorded someone first
            if lost and attempts > 1:  # resolve again with their records (now remembered)
                return await self.resolve(people, attempts=attempts - 1)
        return chosen

    async def _lookup(self, names: Iterable[Key]) -> dict[Key, str]:
        wanted = list(names)
        found = {k: self._memory[k] for k in wanted if k in self._memory}
        missing = [k for k in wanted if k not in found]
        if missing:
            values = await self.wire.mget([redis_keys.identity(t, n) for t, n in missing])
            found |= {k: v.decode() if isinstance(v, bytes) else str(v)
                      for k, v in zip(missing, values, strict=True) if v is not None}
            missing = [k for k in missing if k not in found]
        if missing:
            durable = await self.durable.load(missing)
            self._to_cache(durable)
            found |= durable
        for key, value in found.items():
            self._remember(key, value)
        return found

    async def _record(self, new: dict[Key, str]) -> dict[Key, str]:
        """Insert ``new`` (first writer wins) and return what is recorded for each key (one being recorded by another
        router at that moment may be missing)."""
        stored = await self.durable.record(new)
        self._to_cache(stored)
        for key, value in stored.items():
            self._remember(key, value)
        return stored

    def cache_commands(self) -> list[Command]:
        """The Redis writes of the records PostgreSQL gave since the last call (the caller sends them)."""
        commands: list[Command] = [("SET", redis_keys.identity(tenant, name), person, "EX", REDIS_TTL_S)
                                   for (tenant, name), person in self.uncached.items()]
        self.uncached = {}
        return commands

    def _to_cache(self, records: dict[Key, str]) -> None:
        room = UNCACHED_MAX - len(self.uncached)
        self.uncached.update(list(records.items())[:max(room, 0)])

    def _remember(self, key: Key, value: str) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_max:
            self._memory.popitem(last=False)
