"""``--pg-stats`` of the benches: what PostgreSQL spent its time on, statement by statement.

The bench's stack loads ``pg_stat_statements`` (``LocalStack(pg_statements=True)``); ``reset`` clears its
counts before the measured phase and ``report`` prints the statements that took the most time since (execution
plus planning), with their calls, rows and time per call: a statement slow per call, or called once per record
where a batch was meant, shows there first (and ``EXPLAIN`` says why).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

_TIME = "total_exec_time + total_plan_time"
_HERE = "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
_TOP = text(f"SELECT {_TIME} AS ms, total_plan_time AS plan_ms, calls, rows, "
            f"left(regexp_replace(query, '\\s+', ' ', 'g'), :width) AS query {_HERE} "
            f"ORDER BY {_TIME} DESC LIMIT :limit")
_TOTAL = text(f"SELECT coalesce(sum({_TIME}), 0), coalesce(sum(calls), 0) {_HERE}")


@asynccontextmanager
async def _connected(database_url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def reset(database_url: str) -> None:
    """Forget the counts so far (the stack's set-up)."""
    async with _connected(database_url) as conn:
        await conn.execute(text("SELECT pg_stat_statements_reset()"))


async def report(database_url: str, limit: int = 15, width: int = 110) -> str:
    """The ``limit`` statements that took the most time since ``reset``, one line each, under the total."""
    async with _connected(database_url) as conn:
        total_ms, calls = (await conn.execute(_TOTAL)).one()
        rows = (await conn.execute(_TOP, {"limit": limit, "width": width})).all()
    lines = [f"postgres statements: {float(total_ms):.0f} ms in {int(calls)} calls; the most time:",
             f"{'ms':>8} {'plan ms':>8} {'calls':>7} {'rows':>8} {'ms/call':>8}  statement"]
    lines += [f"{row.ms:8.0f} {row.plan_ms:8.0f} {row.calls:7d} {row.rows:8d} {row.ms / max(row.calls, 1):8.3f}  "
              f"{row.query}" for row in rows]
    return "\n".join(lines)
