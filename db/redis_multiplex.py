"""One Redis connection carrying pipelines back to back, replies matched in order (the dispatcher's batcher,
``db.redis_wire``).

A redis-py pipeline takes a pooled connection (a lock, a liveness probe, observability hooks), writes, reads
its replies one coroutine step each and gives the connection back: about 200 µs of CPU per pipeline besides
the calls. Under the rate limits' pacing a turn holds few calls, so that overhead was most of a call's cost
(measured on redis-server, 4 calls a turn: 81 µs of client CPU a call against 29 here; 16 a turn: 35 against
11). Redis answers a connection's commands in the order it received them, so one connection carries the
pipelines back to back: each write queues its calls, and hiredis (the parser redis-py uses) reads the replies
as they arrive, each going to the oldest call still waiting. Error replies become redis-py's exceptions.

A lost connection fails every call waiting on it with ``ConnectionError`` (their outcome is unknown, as a
failed redis-py pipeline's is); so does a connection on which Redis answered nothing for ``REPLY_TIMEOUT_S``
while calls waited. The next write connects again. Host, port, TLS, database and credentials
are the client's own (its connection pool's settings).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError

REPLY_TIMEOUT_S = 10.0  # no reply for this long while calls wait: the connection is dropped, the calls fail
Command = tuple[Any, ...]
Reply = Callable[[Any, Any], None]  # (the call's token, its reply or exception)


class _Protocol(asyncio.Protocol):
    def __init__(self, on_reply: Reply, reply_timeout_s: float) -> None:
        self.on_reply = on_reply
        self.reply_timeout_s = reply_timeout_s
        self.reader = hiredis.Reader(replyError=BaseParser.parse_error)
        self.waiting: collections.deque[Any] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.progress_at = 0.0  # loop time of the last data from Redis, or of the write that found nothing waiting
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self.progress_at = asyncio.get_running_loop().time()
        while (reply := self.reader.gets()) is not False:
            self.on_reply(self.waiting.popleft(), reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        error = RedisConnectionError(f"the connection to Redis was lost: {exc or 'closed by the server'}")
        while self.waiting:
            self.on_reply(self.waiting.popleft(), error)

    def write(self, commands: Sequence[Command], tokens: Sequence[Any]) -> None:
        assert self.transport is not None
        if not self.waiting:
            loop = asyncio.get_running_loop()
            self.progress_at = loop.time()
            if self.watchdog is None:
                self.watchdog = loop.call_later(self.reply_timeout_s, self._check)
        self.transport.write(b"".join(hiredis.pack_command(c) for c in commands))
        self.waiting.extend(tokens)

    def _check(self) -> None:
        """A Redis that stopped answering (no reply for ``reply_timeout_s``) fails its calls instead of hanging."""
        self.watchdog = None
        if not self.waiting or self.transport is None:
            return
        late = asyncio.get_running_loop().time() - self.progress_at
        if late >= self.reply_timeout_s:
            self.transport.abort()  # connection_lost fails every call waiting
        else:
            self.watchdog = asyncio.get_running_loop().call_later(self.reply_timeout_s - late, self._check)

    @property
    def usable(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()


class Multiplexed:
    """Writes batches of commands on one connection to the Redis of ``client``; ``on_reply`` gets each reply."""

    def __init__(self, client: aioredis.Redis, on_reply: Reply, *, reply_timeout_s: float = REPLY_TIMEOUT_S) -> None:
        self.on_reply = on_reply
        self.reply_timeout_s = reply_timeout_s
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
            self._connecting = None
            self._fail_backlog(exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(
                f"cannot connect to Redis: {exc}"))
            if not isinstance(exc, Exception):
                raise
            return
        self._connecting = None
        self._protocol = protocol
        if not protocol.usable:  # lost again already: the next write connects
            self._fail_backlog(RedisConnectionError("the connection to Redis was lost while connecting"))
            return
        backlog, self._backlog = self._backlog, []
        for commands, tokens in backlog:
            protocol.write(commands, tokens)

    def _fail_backlog(self, error: Exception) -> None:
        backlog, self._backlog = self._backlog, []
        for _, tokens in backlog:
            for token in tokens:
                self.on_reply(token, error)

    async def _open(self) -> _Protocol:
        """A connected, authenticated protocol on the client's database."""
        loop = asyncio.get_running_loop()

        def handshake_reply(future: asyncio.Future[Any], reply: Any) -> None:
            if not future.done():
                future.set_result(reply)

        o = self._options
        timeout = o.get("socket_connect_timeout") or 5.0
        factory = functools.partial(_Protocol, handshake_reply, self.reply_timeout_s)
        if issubclass(self._kind, UnixDomainSocketConnection):
            connecting = loop.create_unix_connection(factory, o["path"])
        else:
            context: ssl.SSLContext | None = None
            if issubclass(self._kind, SSLConnection):
                context = self._kind(**o).ssl_context.get()
            connecting = loop.create_connection(factory, o.get("host", "localhost"),
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
