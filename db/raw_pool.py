"""asyncpg's own pool beside an engine's, for the statements a stream worker makes for every batch.

SQLAlchemy's ``engine.connect()`` and ``execute`` cost about 400 µs of CPU a statement against PostgreSQL where
asyncpg's pool and ``fetch`` cost about 175 (the same statement, 2,000 calls each, one run), and the stream worker
makes about seven a question (identities and conversation states). Statements run here are plain SQL with ``$n``
parameters, each on its own (autocommit); their errors are asyncpg's own, which ``broker.runtime.transient``
classifies like SQLAlchemy's. ``raw_pool(engine)`` gives every caller of one engine the same pool, opened at its
first use (at most ``MAX_SIZE`` connections) and closed by ``close_raw_pool(engine)``.

A connection goes back to the pool without asyncpg's reset query (``pg_advisory_unlock_all()``, ``CLOSE ALL``,
``UNLISTEN *``, ``RESET ALL``: a second round trip for every statement, half of the pool's calls at PostgreSQL).
Nothing run here takes a lock, opens a cursor, listens or sets a session variable, and asyncpg still rolls back a
transaction left open before a connection is reused.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

MAX_SIZE = 4  # connections of one process's raw pool, beside its engine's


class RawPool:
    """An asyncpg pool of ``url``, opened at the first statement (again after a failed opening)."""

    def __init__(self, url: str, *, max_size: int = MAX_SIZE) -> None:
        self._url = url
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """The rows of one statement, run on its own."""
        pool = self._pool or await self._open()
        async with pool.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _open(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._url, min_size=0, max_size=self._max_size, reset=_kept_as_is
                )
            return self._pool


async def _kept_as_is(conn: asyncpg.Connection) -> None:
    """No reset query on release: the statements run here leave no session state (see the module's docstring)."""


_POOLS: weakref.WeakKeyDictionary[Any, RawPool] = weakref.WeakKeyDictionary()


def raw_pool(engine: AsyncEngine) -> RawPool:
    """The raw pool beside ``engine``'s (shared by the engines its ``execution_options`` derive: one pool)."""
    key = engine.sync_engine.pool
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = RawPool(driver_url(engine))
    return pool


def driver_url(engine: AsyncEngine) -> str:
    """``engine``'s database as asyncpg's own URL (its password included: to connect with, never to log)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def close_raw_pool(engine: AsyncEngine) -> None:
    """Close the raw pool beside ``engine``'s, if one was made."""
    pool = _POOLS.pop(engine.sync_engine.pool, None)
    if pool is not None:
        await pool.close()
