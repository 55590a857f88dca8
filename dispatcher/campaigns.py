"""Whether a campaign's message may go now: the campaign's state, read right before each of its calls.

The API writes a campaign's state to Redis (``config.redis_keys.campaign_state``) when it launches, pauses,
resumes or cancels it, so a pause or a cancel stops the campaign's next call within one Redis read. A state
missing from Redis (Redis lost its data) is read back from PostgreSQL and cached again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from config import redis_keys
from db.tables import campaigns
from dispatcher.coalesce import ScriptBatcher

SENDING = "running"


class CampaignGate:
    """Reads a campaign's state for the sender (``running`` sends; anything else holds the message back)."""

    def __init__(self, redis: Redis, engine: AsyncEngine, reads: ScriptBatcher) -> None:
        self.redis = redis
        self.engine = engine
        self.reads = reads  # the sender's batcher: the reads share the sends' pipelines

    def ask(self, campaign_id: str) -> asyncio.Future[Any]:
        """The campaign's cached state, read in the batcher's next turn (with the other reads made before it)."""
        return self.reads.get(redis_keys.campaign_state(campaign_id))

    async def state(self, campaign_id: str, asked: asyncio.Future[Any] | None = None) -> str:
        """The campaign's state: its cached value (``asked``, or read now), else PostgreSQL's."""
        cached = await (asked if asked is not None else self.ask(campaign_id))
        if cached is not None:
            return cached.decode() if isinstance(cached, bytes) else str(cached)
        async with self.engine.connect() as conn:
            stored = (await conn.execute(select(campaigns.c.state).where(campaigns.c.id == campaign_id))).scalar()
        if stored is None:
            return "missing"
        await self.redis.set(redis_keys.campaign_state(campaign_id), stored, nx=True)
        return str(stored)
