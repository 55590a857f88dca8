"""Lua calls to Redis coalesced: the calls made in one event-loop turn go out as one pipeline.

The dispatcher's workers each run a few Lua scripts per send (idempotency record, rate slots). Sent one
by one, every call is its own round trip and its own trip through the connection pool; with hundreds of
sends in flight, most of a turn's calls can share a single write and a single read instead. Each call
still runs as its own atomic script on the server (calls made one after another by one coroutine stay in
that order: each awaits its reply), so nothing of a script's guarantees changes; a lost connection fails
each call waiting on it. The pipelines share one connection (``db.redis_multiplex``).

``ScriptBatcher.register_script`` has the signature of ``redis.asyncio.Redis.register_script`` (the
returned callable takes ``keys`` and ``args``), so the stores that take a client take a batcher as well.
``get`` reads a key in the same pipelines (a campaign's state, a service-window marker). Calls made inside
``urgent()`` (an interactive reply's) go first, in pipelines of their own: in a turn shared with hundreds of bulk
calls, a reply's call waited for all of them to run and be parsed (10-30 ms per call behind a 10,000-send backlog,
three calls per send: measured step by step in ``bench dispatch``). Paced by a number's rate limit, a turn holds
the calls of about one bulk send, so the dispatcher lets bulk calls wait ``redis_linger_ms`` (1 ms) for others:
in a campaign at 1,000 msg/s that cut the dispatcher's CPU by a tenth and Redis's by a third.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from db.redis_multiplex import Multiplexed

MAX_BATCH = 256  # calls per pipeline; a busier turn sends several
_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("aerostic_redis_urgent", default=False)


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """The batchers' calls made inside (in this task) go in the turn's urgent pipeline, sent first."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


class ScriptHost(Protocol):
    """What the dispatcher's stores need of Redis: scripts to register (a client or a ``ScriptBatcher``)."""

    def register_script(self, script: str) -> Callable[..., Awaitable[Any]]: ...


_Pending = tuple[AsyncScript | None, tuple[Any, ...], int, asyncio.Future[Any]]  # no script: a GET of flat[0]


class ScriptBatcher:
    """Registers scripts whose calls are sent to ``redis`` in pipelines, one per event-loop turn, or per
    ``linger_s`` for calls not made ``urgent()`` (an urgent call sends everything waiting at its turn's end).

    The pipelines go back to back on one connection of their own (``db.redis_multiplex``), not through
    ``redis``'s pool; ``redis`` itself loads the scripts.
    """

    def __init__(self, redis: aioredis.Redis, *, max_batch: int = MAX_BATCH, linger_s: float = 0.0) -> None:
        if max_batch < 1 or linger_s < 0:
            raise ValueError("max_batch must be at least 1 and linger_s not negative")
        self.redis = redis
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.wire = Multiplexed(redis, self._reply)
        self._pending: list[_Pending] = []
        self._urgent: list[_Pending] = []
        self._soon = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loading: dict[str, asyncio.Future[Any]] = {}  # SCRIPT LOADs under way, by sha
        self.pipelines = 0  # sent so far, with ``calls`` calls in them
        self.calls = 0

    def register_script(self, script: str) -> _BatchedScript:
        return _BatchedScript(self, self.redis.register_script(script))

    def call(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> asyncio.Future[Any]:
        return self._queue(script, (*keys, *args), len(keys))

    def get(self, key: str) -> asyncio.Future[Any]:
        """``GET key`` in this turn's pipeline: the value (bytes) or None."""
        return self._queue(None, (key,), 1)

    async def aclose(self) -> None:
        """Close the batcher's connection (calls still waiting fail, lingering ones too)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lingering, self._pending = self._pending, []
        for _, _, _, future in lingering:
            if not future.done():
                future.set_exception(RedisConnectionError("the dispatcher's Redis calls are closed"))
        await self.wire.aclose()

    def _queue(self, script: AsyncScript | None, flat: tuple[Any, ...], numkeys: int) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        urgent = _URGENT.get()
        if urgent or self.linger_s <= 0:
            if not self._soon:
                self._soon = True
                loop.call_soon(self._flush)
        elif self._timer is None and not self._soon:
            self._timer = loop.call_later(self.linger_s, self._flush)
        (self._urgent if urgent else self._pending).append((script, flat, numkeys, future))
        return future

    def _flush(self) -> None:
        self._soon = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        urgent, self._urgent = self._urgent, []
        pending, self._pending = self._pending, []
        for calls in (urgent, pending):  # Redis runs and answers them in this order
            for start in range(0, len(calls), self.max_batch):
                self._send(calls[start:start + self.max_batch])

    def _send(self, batch: list[_Pending]) -> None:
        self.pipelines += 1
        self.calls += len(batch)
        self.wire.write([("GET", flat[0]) if script is None else ("EVALSHA", script.sha, numkeys, *flat)
                         for script, flat, numkeys, _ in batch], batch)

    def _reply(self, call: _Pending, reply: Any) -> None:
        script, flat, numkeys, future = call
        if future.done():  # its caller was cancelled
            return
        if isinstance(reply, NoScriptError) and script is not None:  # Redis (re)started without it: load, again
            self._chain(future, self._again(script, flat, numkeys))
        elif isinstance(reply, Exception):
            future.set_exception(reply)
        else:
            future.set_result(reply)

    async def _again(self, script: AsyncScript, flat: tuple[Any, ...], numkeys: int) -> Any:
        """Load ``script`` once for all the calls that found it missing (not once each), then call it again."""
        loading = self._loading.get(script.sha)
        if loading is None:
            loading = self._loading[script.sha] = asyncio.ensure_future(self.redis.script_load(script.script))
            loading.add_done_callback(lambda _: self._loading.pop(script.sha, None))
        await asyncio.shield(loading)
        return await self.call(script, flat[:numkeys], flat[numkeys:])

    def _chain(self, future: asyncio.Future[Any], call: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                result = await call
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                return
            if not future.done():
                future.set_result(result)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _BatchedScript:
    """A registered script whose calls go through the batcher."""

    def __init__(self, batcher: ScriptBatcher, script: AsyncScript) -> None:
        self.batcher = batcher
        self.script = script

    def __call__(self, keys: Sequence[Any] | None = None, args: Sequence[Any] | None = None) -> asyncio.Future[Any]:
        """The call's reply, to await (a plain future: no coroutine per call)."""
        return self.batcher.call(self.script, keys or (), args or ())
