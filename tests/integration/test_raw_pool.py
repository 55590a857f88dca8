"""``db.raw_pool``: statements on asyncpg's own pool, each connection released without a reset query, and a
transaction left open rolled back before the connection is used again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.raw_pool import RawPool, driver_url, raw_pool


@pytest.fixture
async def pool(db: AsyncEngine) -> AsyncIterator[RawPool]:
    opened = RawPool(driver_url(db), max_size=1)
    yield opened
    await opened.close()


async def last_statement(db: AsyncEngine, pid: int) -> tuple[str, str]:
    """What PostgreSQL's backend ``pid`` ran last, and its state, seen from another connection."""
    async with db.connect() as conn:
        row = (await conn.execute(text("SELECT query, state FROM pg_stat_activity WHERE pid = :pid"),
                                  {"pid": pid})).one()
    return row.query, row.state


async def test_a_released_connection_runs_no_reset_query(pool: RawPool, db: AsyncEngine) -> None:
    statement = "SELECT pg_backend_pid() AS pid, $1::int AS raw_pool_probe"
    rows = await pool.fetch(statement, 7)
    assert rows[0]["raw_pool_probe"] == 7

    query, state = await last_statement(db, rows[0]["pid"])
    assert (query, state) == (statement, "idle")  # asyncpg's default reset would show pg_advisory_unlock_all()

    again = await pool.fetch("SELECT pg_backend_pid() AS pid")
    assert again[0]["pid"] == rows[0]["pid"]  # the same connection, reused


async def test_a_transaction_left_open_is_rolled_back_before_the_connection_is_reused(
    pool: RawPool, db: AsyncEngine
) -> None:
    pid = (await pool.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"]
    await pool.fetch("BEGIN")  # the pool's one connection, released with its transaction open

    query, state = await last_statement(db, pid)
    assert (query, state) == ("ROLLBACK", "idle")


async def test_the_pool_beside_an_engine_is_one_for_the_engines_derived_from_it(db: AsyncEngine) -> None:
    derived = db.execution_options(isolation_level="AUTOCOMMIT")
    assert raw_pool(derived) is raw_pool(db)
