"""The one way Aerostic opens Redis: clients that survive a Redis restart.

After Redis restarts, every pooled connection is stale and fails once ("Connection closed by
server"). These clients retry such failures on a fresh connection with a short exponential
back-off and check idle connections before use, so a restarted Redis costs a retry, not an
error that surfaces as a 503 or kills a background task.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 3
HEALTH_CHECK_S = 5


def connect_redis(url: str, **options: Any) -> Redis:
    """An asyncio client of ``url`` (lazily connecting) that retries on a fresh connection after a restart."""
    return Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), RETRIES),
                          retry_on_error=[RedisConnectionError, RedisTimeoutError],
                          health_check_interval=HEALTH_CHECK_S, **options)
