"""The router's identity book: every customer identity (a number or a BSUID) → the person's one identity.

The rule is ``schemas.identity.canonical``. Records are written once and never re-pointed, so they are
cached without expiry in memory (bounded), in Redis and, durably, in PostgreSQL's ``contact_identities``:
a batch's new records are inserted there first (``ON CONFLICT DO NOTHING``, then read back, so two
routers meeting the same person at once agree on the winner), then in Redis. A lookup tries memory, then
Redis (one ``MGET``), then PostgreSQL (one query) for what Redis lacks, so a lost Redis costs a query,
never a second conversation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis
from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from config import redis_keys
from db.tables import contact_identities
from schemas.identity import Identity, canonical

MEMORY_MAX = 100_000  # records kept in memory (least recently used dropped)
REDIS_TTL_S = 90 * 24 * 3600  # PostgreSQL keeps them
Person = tuple[str, Identity]  # (tenant id, what one webhook says of a customer)


class IdentityBook:
    """Resolves customers to their one identity per tenant, recording new identities on the way."""

    def __init__(self, redis: Redis, engine: AsyncEngine, *, memory_max: int = MEMORY_MAX) -> None:
        self.redis = redis
        self.engine = engine
        self._memory: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._memory_max = memory_max

    async def resolve(self, people: Sequence[Person]) -> list[str]:
        """The one identity of each person, in order; new identities are recorded before this returns."""
        names = {(tenant, n) for tenant, identity in people for n in identity.names}
        known = await self._lookup(names)
        chosen: list[str] = []
        new: dict[tuple[str, str], str] = {}
        for tenant, identity in people:
            mine = {n: known[(tenant, n)] for n in identity.names if (tenant, n) in known}
            mine |= {n: c for (t, n), c in new.items() if t == tenant and n in identity.names and n not in mine}
            person, records = canonical(identity, mine)
            chosen.append(person)
            new.update({(tenant, n): c for n, c in records.items()})
        if new:
            winners = await self._record(new)
            if any(winners[k] != c for k, c in new.items()):  # another router recorded someone first: use theirs
                return await self.resolve(people)
        return chosen

    async def _lookup(self, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        wanted = list(names)
        found = {k: self._memory[k] for k in wanted if k in self._memory}
        missing = [k for k in wanted if k not in found]
        if missing:
            values = await self.redis.mget([redis_keys.identity(t, n) for t, n in missing])
            found |= {k: v.decode() if isinstance(v, bytes) else str(v)
                      for k, v in zip(missing, values, strict=True) if v is not None}
            missing = [k for k in missing if k not in found]
        if missing:
            async with self.engine.connect() as conn:
                rows = await conn.execute(select(contact_identities.c.tenant_id, contact_identities.c.identity,
                                                 contact_identities.c.canonical).where(
                    tuple_(contact_identities.c.tenant_id, contact_identities.c.identity).in_(missing)))
                durable = {(str(r.tenant_id), r.identity): r.canonical for r in rows}
            if durable:
                await self._cache(durable)
            found |= durable
        for key, value in found.items():
            self._remember(key, value)
        return found

    async def _record(self, new: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        """Insert ``new`` (first writer wins) and return what is recorded for each key."""
        async with self.engine.begin() as conn:
            await conn.execute(insert(contact_identities).on_conflict_do_nothing(), [
                {"tenant_id": t, "identity": n, "canonical": c} for (t, n), c in new.items()])
            rows = await conn.execute(select(contact_identities.c.tenant_id, contact_identities.c.identity,
                                             contact_identities.c.canonical).where(
                tuple_(contact_identities.c.tenant_id, contact_identities.c.identity).in_(list(new))))
            stored = {(str(r.tenant_id), r.identity): r.canonical for r in rows}
        await self._cache(stored)
        for key, value in stored.items():
            self._remember(key, value)
        return stored

    async def _cache(self, records: dict[tuple[str, str], str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for (tenant, name), person in records.items():
                pipe.set(redis_keys.identity(tenant, name), person, ex=REDIS_TTL_S)
            await pipe.execute()

    def _remember(self, key: tuple[str, str], value: str) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_max:
            self._memory.popitem(last=False)
