"""The number pacer's loop survives a Redis outage: its waiters are served once Redis answers again."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from dispatcher.pacing import NumberPacer
from dispatcher.ratelimit import Slots


class FlakyLimits:
    """A limiter whose first ``failures`` reservations fail as if Redis had restarted, then grant at once."""

    margin = 0.02

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def reserve_slots(self, phone_number_id: str, rate: float, count: int, *, max_wait_s: float,
                            reply: bool = False) -> Slots:
        self.calls += 1
        if self.calls <= self.failures:
            raise RedisConnectionError("Connection closed by server.")
        return Slots(1, 0.0, 1 / rate)


async def test_waiters_are_served_after_the_limiter_failed() -> None:
    limits: Any = FlakyLimits(failures=2)
    pacer = NumberPacer(limits)
    await asyncio.wait_for(asyncio.gather(*(pacer.slot("123", 80.0, interactive=i % 2 == 0) for i in range(4))),
                           timeout=10)
    assert limits.calls == 2 + 4
