"""Registry lookups: with a cache, concurrent lookups of one key share one read; without one, each reads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from templates.registry import Registry


class FakeEngine:
    """Counts connections; each read waits for ``gate`` and answers ``synced_at`` (or fails)."""

    def __init__(self) -> None:
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[FakeEngine]:
        self.reads += 1
        yield self

    async def execute(self, _query: Any) -> FakeEngine:
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("the database went away")
        return self

    def scalar(self) -> str:
        return "2026-12-02T18:00:00Z"


async def _concurrently(registry: Registry, engine: FakeEngine, n: int) -> list[bool]:
    engine.gate.clear()
    lookups = [asyncio.create_task(registry.synced("tenant", "waba")) for _ in range(n)]
    await asyncio.sleep(0)
    engine.gate.set()
    return await asyncio.gather(*lookups)


async def test_concurrent_lookups_share_one_read_and_the_cache_then_answers() -> None:
    engine = FakeEngine()
    registry = Registry(engine, ttl_s=60)  # type: ignore[arg-type]
    assert await _concurrently(registry, engine, 50) == [True] * 50
    assert await registry.synced("tenant", "waba") is True
    assert engine.reads == 1


async def test_without_a_cache_every_lookup_reads() -> None:
    engine = FakeEngine()
    registry = Registry(engine, ttl_s=0.0)  # type: ignore[arg-type]
    assert await _concurrently(registry, engine, 5) == [True] * 5
    assert engine.reads == 5


async def test_a_failed_read_fails_its_sharers_and_is_not_kept() -> None:
    engine = FakeEngine()
    registry = Registry(engine, ttl_s=60)  # type: ignore[arg-type]
    engine.fail = True
    with pytest.raises(ConnectionError):
        await _concurrently(registry, engine, 3)
    assert engine.reads == 1
    engine.fail = False
    assert await registry.synced("tenant", "waba") is True
    assert engine.reads == 2
