"""Fixtures shared by the conversation processor's unit tests."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis


@pytest.fixture
async def redis(redis_client: aioredis.Redis) -> aioredis.Redis:
    """The shared unit-test Redis, emptied: these tests reuse the same conversation keys."""
    await redis_client.flushdb()
    return redis_client


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"
