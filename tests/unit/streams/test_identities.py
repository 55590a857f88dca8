"""streams.identities: the router's identity book against the unit-test Redis and an in-memory durable table."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import redis.asyncio as aioredis

from config import redis_keys
from schemas.identity import Identity
from streams.identities import IdentityBook, Key

PHONE, BSUID, OTHER = "16505551234", "US.13491208655302741918", "US.99"


class MemoryIdentities:
    """``DurableIdentities`` in a dict; ``loads`` counts the reads (one query each in PostgreSQL)."""

    def __init__(self) -> None:
        self.rows: dict[Key, str] = {}
        self.loads = 0

    async def load(self, keys: Collection[Key]) -> dict[Key, str]:
        self.loads += 1
        return {k: self.rows[k] for k in keys if k in self.rows}

    async def record(self, new: Mapping[Key, str]) -> dict[Key, str]:
        for key, value in new.items():
            self.rows.setdefault(key, value)
        return {k: self.rows[k] for k in new}


async def _write_cache(book: IdentityBook, redis: aioredis.Redis) -> None:
    """What the router does once its batch is published: the new records' Redis writes, with its own."""
    await book.wire.run(book.cache_commands())


async def test_a_username_only_person_keeps_their_bsuid_key_through_a_lost_redis_and_a_restart(
        redis: aioredis.Redis, tenant: str) -> None:
    durable = MemoryIdentities()
    book = IdentityBook(redis, durable)
    assert await book.resolve([(tenant, Identity(None, BSUID))]) == [BSUID]
    assert await book.resolve([(tenant, Identity(PHONE, BSUID))]) == [BSUID]
    assert durable.rows == {(tenant, BSUID): BSUID, (tenant, PHONE): BSUID}
    assert await redis.get(redis_keys.identity(tenant, PHONE)) is None  # not before the batch is published
    await _write_cache(book, redis)
    assert await redis.get(redis_keys.identity(tenant, PHONE)) == BSUID.encode() and not book.uncached
    await redis.flushdb()  # Redis lost, and the router restarted (an empty memory)
    again = IdentityBook(redis, durable)
    assert await again.resolve([(tenant, Identity(PHONE, None))]) == [BSUID] and durable.loads >= 1
    await _write_cache(again, redis)
    assert await redis.get(redis_keys.identity(tenant, PHONE)) == BSUID.encode()  # cached again


async def test_one_batch_naming_one_person_three_ways_resolves_to_one_identity(
        redis: aioredis.Redis, tenant: str) -> None:
    book = IdentityBook(redis, MemoryIdentities())
    people = [(tenant, Identity(PHONE, None)), (tenant, Identity(PHONE, BSUID)), (tenant, Identity(None, BSUID))]
    assert await book.resolve(people) == [PHONE, PHONE, PHONE]
    assert await book.resolve([("another-tenant", Identity(None, BSUID))]) == [BSUID]  # tenants never share


async def test_a_record_another_router_made_first_wins(redis: aioredis.Redis, tenant: str) -> None:
    durable = MemoryIdentities()
    book = IdentityBook(redis, durable)
    durable.rows[(tenant, BSUID)] = OTHER  # recorded meanwhile, not yet in Redis nor in this router's memory
    original = durable.load

    async def blind(keys: Collection[Key]) -> dict[Key, str]:  # the first read misses it (a race)
        durable.load = original  # type: ignore[method-assign]
        return {}

    durable.load = blind  # type: ignore[method-assign]
    assert await book.resolve([(tenant, Identity(PHONE, BSUID))]) == [OTHER]
    assert durable.rows[(tenant, PHONE)] == PHONE  # its own record for the number was first, and stays
