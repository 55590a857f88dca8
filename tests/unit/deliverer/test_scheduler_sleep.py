"""The deliverer's scheduler sleeps until the next delivery is due or it is woken, never polling in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import DelivererSettings
from deliverer.scheduler import Scheduler

# An idle look far beyond every wait below: a tick that comes is the one the loop was told to make.
SETTINGS = DelivererSettings(environment="test", webhook_idle_poll_s=60.0, webhook_poll_s=5.0)


class Ticks:
    """A stand-in for ``Scheduler.tick``: answers with the next ``due_in`` and counts the calls."""

    def __init__(self, answers: list[float | None]) -> None:
        self.answers = answers
        self.calls = 0
        self.changed = asyncio.Event()

    async def __call__(self) -> float | None:
        self.calls += 1
        self.changed.set()
        return self.answers.pop(0) if self.answers else None

    async def reach(self, calls: int, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while self.calls < calls:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def running() -> AsyncIterator[Any]:
    tasks: list[asyncio.Task[None]] = []

    def start(answers: list[float | None]) -> tuple[Scheduler, Ticks]:
        scheduler = Scheduler(cast(AsyncEngine, None), SETTINGS, asyncio.Event())
        ticks = Ticks(answers)
        scheduler.tick = ticks  # type: ignore[method-assign]
        tasks.append(asyncio.create_task(scheduler.run()))
        return scheduler, ticks

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_it_ticks_again_when_the_next_delivery_is_due(running: Any) -> None:
    _, ticks = running([0.05])  # a retry due in 50 ms
    await ticks.reach(2)


async def test_a_full_tick_is_followed_by_another_at_once(running: Any) -> None:
    _, ticks = running([0.0, 0.0])
    await ticks.reach(3)


async def test_with_nothing_due_it_sleeps_until_woken(running: Any) -> None:
    scheduler, ticks = running([None, None])
    await ticks.reach(1)
    for _ in range(20):  # the loop has every chance to run: it is asleep on its wake-up, not on a timer
        await asyncio.sleep(0)
    assert ticks.calls == 1
    scheduler.wake.set()
    await ticks.reach(2)


async def test_a_wake_up_during_a_tick_is_not_lost(running: Any) -> None:
    scheduler = Scheduler(cast(AsyncEngine, None), SETTINGS, asyncio.Event())
    calls = 0
    second = asyncio.Event()

    async def tick() -> float | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            scheduler.wake.set()  # intake queued deliveries while the tick ran
        else:
            second.set()
        return None

    scheduler.tick = tick  # type: ignore[method-assign]
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(2.0):
            await second.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
