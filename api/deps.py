"""FastAPI dependencies of the tenant API: the long-lived clients opened by the ingress lifespan.

``open_clients`` builds the database engine and the Redis client once; the lifespan stores them
(with the producer, the settings and the tenants' rate limiter) on ``app.state`` and the ``*Dep``
aliases hand them to the routes. Neither client connects before its first use, so the webhook hot
path never waits on them.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.ratelimit import TenantRateLimiter
from broker.producer import AsyncProducer
from config.settings import IngressSettings
from db.redis_client import connect_redis

# The API does short, indexed queries: a small pool per replica is enough and spares PostgreSQL.
POOL_SIZE = 5
POOL_OVERFLOW = 5
REDIS_TIMEOUT_S = 2.0


def open_clients(settings: IngressSettings) -> tuple[AsyncEngine, Redis]:
    """The API's database engine and Redis client (lazily connecting; close both at shutdown)."""
    engine = create_async_engine(settings.database_url.get_secret_value(), pool_size=POOL_SIZE,
                                 max_overflow=POOL_OVERFLOW, pool_pre_ping=True, pool_recycle=1800)
    redis = connect_redis(settings.redis_url.get_secret_value(), decode_responses=True,
                           socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    return engine, redis


async def close_clients(engine: AsyncEngine, redis: Redis) -> None:
    """Close what ``open_clients`` opened."""
    try:
        await redis.aclose()
    finally:
        await engine.dispose()


def get_engine(request: Request) -> AsyncEngine:
    return cast(AsyncEngine, request.app.state.engine)


def get_redis(request: Request) -> Redis:
    return cast(Redis, request.app.state.redis)


def get_producer(request: Request) -> AsyncProducer:
    return cast(AsyncProducer, request.app.state.producer)


def get_settings(request: Request) -> IngressSettings:
    return cast(IngressSettings, request.app.state.settings)


def get_rate_limiter(request: Request) -> TenantRateLimiter:
    return cast(TenantRateLimiter, request.app.state.rate_limiter)


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
RedisDep = Annotated[Redis, Depends(get_redis)]
ProducerDep = Annotated[AsyncProducer, Depends(get_producer)]
SettingsDep = Annotated[IngressSettings, Depends(get_settings)]
RateLimiterDep = Annotated[TenantRateLimiter, Depends(get_rate_limiter)]
