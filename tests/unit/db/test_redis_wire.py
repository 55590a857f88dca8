"""The stream workers' Redis wire: a batch's commands in one write, replies in order, errors as a pipeline's, a lost
connection failing what waits on it (then connecting again), one wire per client."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from db.redis_wire import close_redis_wire, redis_wire


async def test_replies_come_back_raw_and_in_order(redis_client: aioredis.Redis, uid: str) -> None:
    wire = redis_wire(redis_client)
    replies = await wire.run([("SET", f"{uid}:a", b"1", "EX", 60), ("SET", f"{uid}:b", "two"),
                              ("MGET", f"{uid}:a", f"{uid}:missing", f"{uid}:b"), ("EXISTS", f"{uid}:a", f"{uid}:b"),
                              ("INFO", "server")])
    assert replies[:4] == [b"OK", b"OK", [b"1", None, b"two"], 2]
    assert isinstance(replies[4], bytes) and b"run_id:" in replies[4]
    assert 0 < await redis_client.ttl(f"{uid}:a") <= 60
    assert await wire.mget([f"{uid}:b", f"{uid}:missing"]) == [b"two", None]
    assert await wire.mget([]) == [] and await wire.run([]) == []


async def test_an_error_reply_is_raised_once_every_command_ran_or_returned_in_its_place(
        redis_client: aioredis.Redis, uid: str) -> None:
    wire = redis_wire(redis_client)
    await redis_client.set(f"{uid}:text", "not a number")
    with pytest.raises(ResponseError, match="not an integer"):
        await wire.run([("INCR", f"{uid}:text"), ("SET", f"{uid}:after", "ran")])
    assert await redis_client.get(f"{uid}:after") == b"ran"  # the commands after the error still ran
    replies = await wire.run([("INCR", f"{uid}:text"), ("GET", f"{uid}:after")], raise_on_error=False)
    assert isinstance(replies[0], ResponseError) and replies[1] == b"ran"


async def test_a_lost_connection_fails_what_waits_on_it_and_the_next_call_connects_again(
        redis_client: aioredis.Redis, uid: str) -> None:
    wire = redis_wire(redis_client)
    [wire_id] = await wire.run([("CLIENT", "ID")])
    waiting = asyncio.create_task(wire.run([("BLPOP", f"{uid}:never", 30)], raise_on_error=False))
    for _ in range(200):  # until Redis has the BLPOP blocked (an event Redis reports, not a sleep of a guessed length)
        if any(int(c["id"]) == wire_id and c["cmd"] == "blpop" for c in await redis_client.client_list()):
            break
    else:
        pytest.fail("the wire's BLPOP never reached Redis")
    assert await redis_client.client_kill_filter(_id=wire_id) == 1
    with pytest.raises(RedisConnectionError):  # even with raise_on_error=False: its outcome is unknown
        await waiting
    assert await wire.run([("SET", f"{uid}:again", "yes"), ("GET", f"{uid}:again")]) == [b"OK", b"yes"]
    assert wire.wire.connections == 2


async def test_one_wire_per_client_on_one_connection_and_its_database(redis_url: str, uid: str) -> None:
    client = aioredis.from_url(redis_url, db=3)
    try:
        wire = redis_wire(client)
        assert redis_wire(client) is wire
        await asyncio.gather(*(wire.run([("SET", f"{uid}:{n}", n)]) for n in range(50)))
        assert wire.wire.connections == 1
        assert await client.get(f"{uid}:49") == b"49"  # written in database 3, the client's
        await close_redis_wire(client)
        assert redis_wire(client) is not wire  # closed and forgotten: a new one on the next call
    finally:
        await close_redis_wire(client)
        await client.flushdb()
        await client.aclose()
