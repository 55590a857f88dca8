"""Background loops that never die unobserved.

A worker's long-lived loops (committing offsets, pacing a number's sends, reporting) must outlive
a Redis, broker or PostgreSQL outage. ``keep_running`` runs such a loop; when it raises, the error
is logged with its traceback and the loop is started again after a back-off (doubling up to
``max_backoff_s``, reset after a minute of health). Only cancellation stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

HEALTHY_AFTER_S = 60.0


def keep_running(name: str, loop: Callable[[], Awaitable[None]], *, max_backoff_s: float = 5.0) -> asyncio.Task[None]:
    """Start ``loop()`` as a task that is restarted whenever it raises; a clean return ends it."""

    async def supervise() -> None:
        backoff = 0.1
        clock = asyncio.get_running_loop()
        while True:
            started = clock.time()
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if clock.time() - started > HEALTHY_AFTER_S:
                    backoff = 0.1
                log.exception("%s failed; restarting it in %.1f s", name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff_s)

    return asyncio.create_task(supervise(), name=name)
