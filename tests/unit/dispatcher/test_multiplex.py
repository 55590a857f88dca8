"""The batcher's one connection: every turn's pipeline on it, the client's database and credentials, and a
lost connection failing the calls waiting on it (then connecting again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
import uvloop
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from dispatcher.coalesce import ScriptBatcher

_INCR = "return redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))"


async def test_every_turn_shares_one_connection(redis_client: aioredis.Redis, uid: str) -> None:
    batcher = ScriptBatcher(redis_client)
    incr = batcher.register_script(_INCR)
    await redis_client.script_load(_INCR)

    async def sender(n: int) -> list[int]:  # each awaits its reply before its next call: a turn per call
        return [await incr(keys=[f"{uid}:{n}"], args=[1]) for _ in range(20)]

    try:
        assert await asyncio.gather(*(sender(n) for n in range(30))) == [list(range(1, 21))] * 30
        assert batcher.pipelines >= 20 and batcher.calls == 600 and batcher.wire.connections == 1
    finally:
        await batcher.aclose()


@pytest.fixture
async def acl_user(redis_client: aioredis.Redis, uid: str) -> AsyncIterator[str]:
    await redis_client.acl_setuser(uid, enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all"])
    try:
        yield uid
    finally:
        await redis_client.acl_deluser(uid)


@pytest.mark.parametrize("transport", ["unix", "tcp"])
async def test_the_clients_database_and_credentials_are_used(redis_url: str, redis_tcp_url: str, acl_user: str,
                                                              uid: str, transport: str) -> None:
    if transport == "tcp":
        host_port = redis_tcp_url.removeprefix("redis://").split("/")[0]
        client = aioredis.from_url(f"redis://{acl_user}:secret@{host_port}/3")
        wrong = aioredis.from_url(f"redis://{acl_user}:wrong@{host_port}/3")
    else:
        path = redis_url.removeprefix("unix://").split("?")[0]
        client = aioredis.from_url(f"unix://{acl_user}:secret@{path}?db=3")
        wrong = aioredis.from_url(f"unix://{acl_user}:wrong@{path}?db=3")
    batcher, refused = ScriptBatcher(client), ScriptBatcher(wrong)
    try:
        await client.set(f"{uid}:on-3", "here")
        assert await batcher.get(f"{uid}:on-3") == b"here"
        with pytest.raises(AuthenticationError):
            await refused.get(f"{uid}:on-3")
    finally:
        for closing in (batcher, refused):
            await closing.aclose()
        await client.aclose()
        await wrong.aclose()


async def test_a_lost_connection_fails_the_waiting_calls_and_the_next_call_connects_again(uid: str) -> None:
    received: list[bytes] = []
    hang_up, heard = asyncio.Event(), asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answers nothing; hangs up once told to (a Redis that died mid-call)."""
        received.append(await reader.read(1024))
        heard.set()
        await hang_up.wait()
        writer.close()

    listening = await asyncio.start_server(server, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    client = aioredis.Redis(port=port)
    batcher = ScriptBatcher(client)
    try:
        waiting = [batcher.get(f"{uid}:a"), batcher.get(f"{uid}:b")]
        await asyncio.wait_for(heard.wait(), 10)
        assert received[0].count(b"GET") == 2 and not any(w.done() for w in waiting)
        hang_up.set()
        for call in waiting:
            with pytest.raises(RedisConnectionError, match="lost"):
                await call
        hang_up.clear()
        heard.clear()
        again = batcher.get(f"{uid}:c")
        await asyncio.wait_for(heard.wait(), 10)
        assert b"GET" in received[1] and batcher.wire.connections == 2 and not again.done()
        hang_up.set()
        with pytest.raises(RedisConnectionError):
            await again
    finally:
        await batcher.aclose()
        await client.aclose()
        listening.close()
        await listening.wait_closed()


async def test_a_redis_that_answers_nothing_fails_the_calls_after_the_reply_timeout(uid: str) -> None:
    heard = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        heard.set()
        await reader.read(1024)  # until the client hangs up
        writer.close()

    listening = await asyncio.start_server(silent, "127.0.0.1", 0)
    client = aioredis.Redis(port=listening.sockets[0].getsockname()[1])
    batcher = ScriptBatcher(client)
    batcher.wire.reply_timeout_s = 0.3
    try:
        call = batcher.get(f"{uid}:a")
        await asyncio.wait_for(heard.wait(), 10)
        with pytest.raises(RedisConnectionError, match="lost"):
            await asyncio.wait_for(call, 10)
    finally:
        await batcher.aclose()
        await client.aclose()
        listening.close()
        await listening.wait_closed()


def test_it_runs_on_uvloop_as_the_dispatcher_does(redis_url: str, uid: str) -> None:
    async def calls() -> list[object]:
        client = aioredis.from_url(redis_url)
        batcher = ScriptBatcher(client)
        try:
            await client.set(f"{uid}:state", "running")
            incr = batcher.register_script(_INCR)
            return list(await asyncio.gather(batcher.get(f"{uid}:state"), incr(keys=[uid], args=[2])))
        finally:
            await batcher.aclose()
            await client.aclose()

    assert uvloop.run(asyncio.wait_for(calls(), 10)) == [b"running", 2]
