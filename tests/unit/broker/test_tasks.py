"""broker.tasks.keep_running: a background loop that raises is logged and started again; cancelling stops it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from broker.tasks import keep_running


async def test_a_failing_loop_is_restarted_until_it_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    done = asyncio.Event()

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise ConnectionError("redis is gone")
        done.set()

    with caplog.at_level(logging.ERROR, logger="broker.tasks"):
        task = keep_running("flaky loop", loop)
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.wait_for(task, 5)
    assert runs == [0, 1, 2]
    assert [r.getMessage() for r in caplog.records] == ["flaky loop failed; restarting it in 0.1 s",
                                                        "flaky loop failed; restarting it in 0.2 s"]
    assert all(r.exc_info for r in caplog.records)


async def test_cancelling_stops_it() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = keep_running("forever", forever)
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
