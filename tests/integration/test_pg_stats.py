"""``--pg-stats``: an embedded PostgreSQL started with ``statements`` counts every statement, ``bench.pg_stats``
forgets the counts on ``reset`` and reports the costliest since."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench import pg_stats
from stack.services import Service, start_postgres


@pytest.fixture(scope="module")
def counted_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root: Path = tmp_path_factory.mktemp("pg-stats")
    service = start_postgres(root / "logs", root / "postgres", statements=True)
    try:
        yield service
    finally:
        service.stop()


async def run_probe(url: str, times: int) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            for n in range(times):
                await conn.execute(text("SELECT CAST(:n AS int) + 1 AS pg_stats_probe"), {"n": n})
    finally:
        await engine.dispose()


async def test_the_report_counts_statements_since_the_reset(counted_postgres: Service) -> None:
    url = counted_postgres.url
    await run_probe(url, 3)
    before = await pg_stats.report(url)
    probe = next(line for line in before.splitlines() if "pg_stats_probe" in line)
    assert probe.split()[2] == "3", before  # ms, plan ms, calls, …

    await pg_stats.reset(url)
    after = await pg_stats.report(url)
    assert "pg_stats_probe" not in after, after
    assert after.startswith("postgres statements: ")
