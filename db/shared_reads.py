"""``SharedReads``: values read by key, kept briefly, and one read per key at a time.

A value that hundreds of concurrent sends need (a number's profile, a campaign's template) expires for all of
them at once: read one by one, each would query PostgreSQL. Here they share the first one's read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedReads(Generic[K, V]):
    """Values kept ``ttl_s`` seconds from when their read started; concurrent lookups of a key share one read.

    A read that failed is not kept (its sharers get its error; the next lookup reads again). ``forget`` drops a
    key's value and its read under way, which is not kept when it ends (it may predate the change it was
    forgotten for); ``clear`` does so for every key. With ``ttl_s`` 0 nothing is kept or shared: each lookup
    reads (a caller that must see its own writes). At most ``size`` values are kept: all go when it is reached.
    """

    def __init__(self, ttl_s: float, *, size: int = 10_000) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._values: dict[K, tuple[float, V]] = {}
        self._reading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        """The kept value of ``key``, else what ``read()`` (or the read under way for it) returns."""
        now = time.monotonic()
        kept = self._values.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        if self.ttl_s <= 0:
            return await read()
        reading = self._reading.get(key)
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(read())
            reading.add_done_callback(partial(self._read_done, key, now))
        return await asyncio.shield(reading)

    def forget(self, key: K) -> None:
        self._values.pop(key, None)
        self._reading.pop(key, None)

    def clear(self) -> None:
        self._values.clear()
        self._reading.clear()

    def _read_done(self, key: K, started: float, read: asyncio.Future[V]) -> None:
        if self._reading.get(key) is not read:
            return
        del self._reading[key]
        if read.cancelled() or read.exception() is not None:
            return
        if len(self._values) >= self.size:
            self._values.clear()
        self._values[key] = (started + self.ttl_s, read.result())
