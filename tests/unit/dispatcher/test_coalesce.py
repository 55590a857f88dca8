"""Lua calls coalesced into pipelines, on a real redis-server: same replies, fewer round trips, errors kept apart."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from dispatcher.coalesce import ScriptBatcher, urgent
from dispatcher.idempotency import IdempotencyStore, State

_INCR = "return redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))"


async def test_calls_of_one_turn_share_pipelines(redis_client: aioredis.Redis, uid: str) -> None:
    batcher = ScriptBatcher(redis_client, max_batch=40)
    incr = batcher.register_script(_INCR)
    await redis_client.script_load(_INCR)
    replies = await asyncio.gather(*(incr(keys=[uid], args=[1]) for _ in range(100)))
    assert sorted(replies) == list(range(1, 101))  # each call its own script, each reply its own
    assert (batcher.calls, batcher.pipelines) == (100, 3)  # 40 + 40 + 20


async def test_urgent_calls_get_a_pipeline_of_their_own_sent_first(redis_client: aioredis.Redis, uid: str) -> None:
    batcher = ScriptBatcher(redis_client)
    incr = batcher.register_script(_INCR)
    await redis_client.script_load(_INCR)
    sent: list[int] = []
    send = batcher._send

    def recorded(batch: list) -> None:  # type: ignore[type-arg]
        sent.append(len(batch))
        send(batch)

    batcher._send = recorded  # type: ignore[method-assign]

    bulk = [incr(keys=[uid], args=[1]) for _ in range(5)]
    with urgent():  # the same turn, after the bulk calls
        reply = incr(keys=[f"{uid}:reply"], args=[1])
    replies = await asyncio.gather(*bulk, reply)
    assert sorted(replies[:5]) == [1, 2, 3, 4, 5] and replies[5] == 1
    assert sent == [1, 5]  # the reply's call alone, written ahead of the turn's bulk calls
    assert await incr(keys=[uid], args=[1]) == 6  # outside urgent(): the shared pipelines again
    assert sent == [1, 5, 1]


async def test_calls_of_several_turns_within_the_linger_share_a_pipeline(redis_client: aioredis.Redis,
                                                                          uid: str) -> None:
    batcher = ScriptBatcher(redis_client, linger_s=0.2)
    incr = batcher.register_script(_INCR)
    await redis_client.script_load(_INCR)
    first = incr(keys=[uid], args=[1])
    await asyncio.sleep(0)  # another turn of the event loop: without the linger, the first call would go now
    second = incr(keys=[uid], args=[1])
    assert sorted(await asyncio.gather(first, second)) == [1, 2]
    assert (batcher.calls, batcher.pipelines) == (2, 1)


async def test_an_urgent_call_does_not_wait_for_the_linger(redis_client: aioredis.Redis, uid: str) -> None:
    """It goes at its turn's end, and takes the lingering calls along (one write, not two)."""
    batcher = ScriptBatcher(redis_client, linger_s=60.0)
    incr = batcher.register_script(_INCR)
    await redis_client.script_load(_INCR)
    bulk = incr(keys=[uid], args=[1])
    await asyncio.sleep(0)
    with urgent():
        reply = incr(keys=[f"{uid}:reply"], args=[1])
    assert await asyncio.wait_for(reply, timeout=10) == 1  # far sooner than the linger
    assert await asyncio.wait_for(bulk, timeout=10) == 1
    assert batcher.pipelines == 2  # the reply's own pipeline first, then the bulk call's, in the same flush


async def test_a_lingering_call_fails_when_the_batcher_closes(redis_client: aioredis.Redis, uid: str) -> None:
    batcher = ScriptBatcher(redis_client, linger_s=60.0)
    incr = batcher.register_script(_INCR)
    lingering = incr(keys=[uid], args=[1])
    await batcher.aclose()
    with pytest.raises(RedisConnectionError):
        await lingering
    assert batcher.pipelines == 0 and await redis_client.get(uid) is None


async def test_a_failing_call_fails_alone(redis_client: aioredis.Redis, uid: str) -> None:
    batcher = ScriptBatcher(redis_client)
    incr = batcher.register_script(_INCR)
    replies = await asyncio.gather(incr(keys=[uid], args=[2]), incr(keys=[uid], args=["x"]), incr(keys=[uid], args=[3]),
                                   return_exceptions=True)
    assert replies[0] == 2 and replies[2] == 5
    assert isinstance(replies[1], ResponseError)


async def test_scripts_lost_by_redis_are_loaded_again(redis_client: aioredis.Redis, uid: str) -> None:
    batcher = ScriptBatcher(redis_client)
    incr = batcher.register_script(_INCR)
    assert await incr(keys=[uid], args=[1]) == 1
    await redis_client.script_flush()
    assert await asyncio.gather(incr(keys=[uid], args=[1]), incr(keys=[uid], args=[1])) in ([2, 3], [3, 2])
    await redis_client.script_flush()
    sent = batcher.pipelines
    assert sorted(await asyncio.gather(*(incr(keys=[uid], args=[1]) for _ in range(20)))) == list(range(4, 24))
    assert batcher.pipelines - sent == 2  # one that found the script missing, one after a single load


async def test_a_broken_connection_fails_every_call_of_the_pipeline(uid: str) -> None:
    client = aioredis.Redis(port=1, socket_connect_timeout=1)  # nothing listens there
    batcher = ScriptBatcher(client)
    incr = batcher.register_script(_INCR)
    try:
        with pytest.raises(RedisConnectionError):
            await asyncio.gather(incr(keys=[uid], args=[1]), incr(keys=[uid], args=[1]))
    finally:
        await client.aclose()


async def test_the_idempotency_store_runs_on_a_batcher(redis_client: aioredis.Redis, uid: str) -> None:
    store = IdempotencyStore(ScriptBatcher(redis_client))
    begun = await asyncio.gather(*(store.begin(f"{uid}:{i}", owner="a") for i in range(10)),
                                 store.begin(f"{uid}:0", owner="b"))
    assert begun[:10] == [None] * 10
    assert begun[10] is not None and begun[10].owner == "a"  # the same key, later in the same pipeline
    assert await store.finish(f"{uid}:0", state=State.ACCEPTED, wamid="wamid.1")
    record = await store.get(f"{uid}:0")
    assert record is not None and record.state is State.ACCEPTED


async def test_reads_share_the_pipelines_with_the_scripts(redis_client: aioredis.Redis, uid: str) -> None:
    batcher = ScriptBatcher(redis_client)
    incr = batcher.register_script(_INCR)
    await redis_client.script_load(_INCR)
    await redis_client.set(f"{uid}:state", "running")
    replies = await asyncio.gather(batcher.get(f"{uid}:state"), incr(keys=[uid], args=[5]), batcher.get(f"{uid}:none"))
    assert replies == [b"running", 5, None]
    assert (batcher.calls, batcher.pipelines) == (3, 1)
