"""One Redis connection carrying every pipeline of the dispatcher's batcher, replies matched in order.

A redis-py pipeline takes a pooled connection (a lock, a liveness probe, observability hooks), writes, reads
its replies one coroutine step each and gives the connection back: about 200 µs of CPU per pipeline besides
the calls. Under the rate limits' pacing a turn holds few calls, so that overhead was most of a call's cost
(measured on redis-server, 4 calls a turn: 81 µs of client CPU a call against 29 here; 16 a turn: 35 against
11). Redis answers a connection's commands in the order it received them, so one connection carries the
pipelines back to back: each write queues its calls, and hiredis (the parser redis-py uses) reads the replies
as they arrive, each going to the oldest call still waiting. Error replies become redis-py's exceptions.

A lost connection fails every call waiting on it with ``ConnectionError`` (their outcome is unknown, as a
failed redis-py pipeline's is); the next write connects again. Host, port, TLS, database and credentials
are the client's own (its connection pool's settings).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError

Command = tuple[Any, ...]
Reply = Callable[[Any, Any], None]  # (the call's token, its reply or exception)


class _Protocol(asyncio.Protocol):
    def __init__(self, on_reply: Reply) -> None:
        self.on_reply = on_reply
        self.reader = hiredis.Reader(replyError=BaseParser.parse_error)
        self.waiting: collections.deque[Any] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.on_reply(self.waiting.popleft(), reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        error = RedisConnectionError(f"the connection to Redis was lost: {exc or 'closed by the server'}")
        while self.waiting:
            self.on_reply(self.waiting.popleft(), error)

    def write(self, commands: Sequence[Command], tokens: Sequence[Any]) -> None:
        assert self.transport is not None
        self.transport.write(b"".join(hiredis.pack_command(c) for c in commands))
        self.waiting.extend(tokens)

    @property
    def usable(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()


class Multiplexed:
    """Writes batches of commands on one connection to the Redis of ``client``; ``on_reply`` gets each reply."""

    def __init__(self, client: aioredis.Redis, on_reply: Reply) -> None:
        self.on_reply = on_reply
        pool = client.connection_pool
        self._kind = pool.connection_class
        self._options = dict(pool.connection_kwargs)
        self._protocol: _Protocol | None = None
        self._backlog: list[tuple[Sequence[Command], Sequence[Any]]] = []  # written once connected
        self._connecting: asyncio.Task[None] | None = None
        self.connections = 0  # opened so far

    def write(self, commands: Sequence[Command], tokens: Sequence[Any]) -> None:
        """Send ``commands`` in one write; the reply to ``commands[i]`` goes to ``on_reply(tokens[i], …)``."""
        if self._protocol is not None and self._protocol.usable:
            self._protocol.write(commands, tokens)
            return
        self._backlog.append((commands, tokens))
        if self._connecting is None:
            self._connecting = asyncio.create_task(self._connect())

    async def aclose(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()

    async def _connect(self) -> None:
        try:
            protocol = await self._open()
        except BaseException as exc:
            error = exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(
                f"cannot connect to Redis: {exc}")
            backlog, self._backlog = self._backlog, []
            for _, tokens in backlog:
                for token in tokens:
                    self.on_reply(token, error)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._connecting = None
        self._protocol = protocol
        backlog, self._backlog = self._backlog, []
        for commands, tokens in backlog:
            protocol.write(commands, tokens)

    async def _open(self) -> _Protocol:
        """A connected, authenticated protocol on the client's database."""
        loop = asyncio.get_running_loop()

        def handshake_reply(future: asyncio.Future[Any], reply: Any) -> None:
            if not future.done():
                future.set_result(reply)

        o = self._options
        timeout = o.get("socket_connect_timeout") or 5.0
        if issubclass(self._kind, UnixDomainSocketConnection):
            connecting = loop.create_unix_connection(lambda: _Protocol(handshake_reply), o["path"])
        else:
            context: ssl.SSLContext | None = None
            if issubclass(self._kind, SSLConnection):
                context = self._kind(**o).ssl_context.get()
            connecting = loop.create_connection(lambda: _Protocol(handshake_reply), o.get("host", "localhost"),
                                                int(o.get("port", 6379)), ssl=context)
        try:
            _, protocol = await asyncio.wait_for(connecting, timeout)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        self.connections += 1
        setup: list[Command] = []
        provider = o.get("credential_provider")
        credentials = provider.get_credentials() if provider else (o.get("username"), o.get("password"))
        username, password = (None, *credentials) if len(credentials) == 1 else credentials
        if password:
            setup.append(("AUTH", username, password) if username else ("AUTH", password))
        if int(o.get("db") or 0):
            setup.append(("SELECT", int(o["db"])))
        if setup:
            futures = [loop.create_future() for _ in setup]
            protocol.write(setup, futures)
            for answer in await asyncio.gather(*futures):
                if isinstance(answer, Exception):
                    if protocol.transport is not None:
                        protocol.transport.close()
                    raise answer
        protocol.on_reply = self.on_reply
        return protocol
