"""At-most-once records on a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from config import redis_keys
from dispatcher.idempotency import DEFAULT_TTL_S, IdempotencyStore, State


async def test_begin_new_then_existing(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(redis_client)
    assert await store.begin(uid, owner="dispatcher-a") is None
    again = await store.begin(uid, owner="dispatcher-b")
    assert again is not None and again.in_flight and not again.final
    assert (again.owner, again.attempts, again.ambiguous, again.wamid) == ("dispatcher-a", 1, False, None)
    assert 0 <= again.age_s < 5 and again.created_at == again.updated_at
    assert DEFAULT_TTL_S - 10 < await redis_client.ttl(redis_keys.idempotency(uid)) <= DEFAULT_TTL_S


async def test_finish_accepted_is_final(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(redis_client)
    await store.begin(uid, owner="a")
    assert await store.finish(uid, state=State.ACCEPTED, wamid="wamid.HBgL1")
    record = await store.begin(uid, owner="b")
    assert record is not None and record.state is State.ACCEPTED and record.final
    assert (record.wamid, record.attempts, record.error_code) == ("wamid.HBgL1", 1, None)
    assert not await store.finish(uid, state="failed", error_code=131026, error_title="Undeliverable")
    still = await store.get(uid)
    assert still is not None and still.state is State.ACCEPTED and still.error_code is None


async def test_finish_failed_keeps_meta_error(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(redis_client)
    await store.begin(uid, owner="a")
    await store.finish(uid, state="failed", error_code=132001, error_title="Template name does not exist")
    record = await store.begin(uid, owner="b")
    assert record is not None and record.state is State.FAILED
    assert (record.error_code, record.error_title) == (132001, "Template name does not exist")


async def test_ambiguous_flag_survives_acceptance(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(redis_client)
    assert not await store.mark_ambiguous(uid)  # no record, nothing written
    await store.begin(uid, owner="a")
    assert await store.mark_ambiguous(uid)
    record = await store.get(uid)
    assert record is not None and record.ambiguous and record.in_flight
    await store.finish(uid, state=State.ACCEPTED, wamid="wamid.2")
    done = await store.get(uid)
    assert done is not None and done.ambiguous and done.wamid == "wamid.2"


async def test_in_flight_record_ages(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(redis_client)
    await store.begin(uid, owner="crashed")
    await asyncio.sleep(0.05)  # the age is what is under test
    record = await store.begin(uid, owner="b")
    assert record is not None and record.in_flight and record.age_s >= 0.04


async def test_claim_retry_is_a_compare_and_set(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(redis_client)
    await store.begin(uid, owner="crashed")
    won = await asyncio.gather(*(store.claim_retry(uid, owner=f"d{i}", attempts=1) for i in range(5)))
    assert won.count(True) == 1
    record = await store.get(uid)
    assert record is not None and record.attempts == 2 and record.owner == f"d{won.index(True)}"
    assert not await store.claim_retry(uid, owner="late", attempts=1)


async def test_claim_retry_states(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(redis_client)
    assert not await store.claim_retry(uid, owner="x", attempts=1)  # no record
    await store.begin(uid, owner="a")
    await store.finish(uid, state=State.DEFERRED, error_code=130429, error_title="Rate limit hit")
    deferred = await store.get(uid)
    assert deferred is not None and deferred.state is State.DEFERRED and not deferred.final
    assert await store.claim_retry(uid, owner="a", attempts=1)
    await store.finish(uid, state=State.FAILED, error_code=131026)
    assert not await store.claim_retry(uid, owner="a", attempts=2)  # failed is final


async def test_finish_without_begin_creates_a_record_with_ttl(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(redis_client)
    assert await store.finish(uid, state=State.ACCEPTED, wamid="wamid.3")
    record = await store.get(uid)
    assert record is not None and record.wamid == "wamid.3" and record.attempts == 1
    assert await redis_client.ttl(redis_keys.idempotency(uid)) > 0
    assert await store.get(f"{uid}-missing") is None


async def test_finish_refuses_in_flight(redis_client: aioredis.Redis, uid: str) -> None:
    with pytest.raises(ValueError):
        await IdempotencyStore(redis_client).finish(uid, state="in_flight")


async def test_decoded_client(redis_url: str, uid: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        store = IdempotencyStore(client, ttl_s=60)
        assert await store.begin(uid, owner="a") is None
        record = await store.begin(uid, owner="a")
        assert record is not None and record.owner == "a"
        assert 50 < await client.ttl(redis_keys.idempotency(uid)) <= 60
    finally:
        await client.aclose()
