"""A live stream whose credential stops authenticating (session revoked or expired) is ended."""

from __future__ import annotations

import asyncio

import pytest

from api.live import stream
from tests.unit.sleeps import record_sleeps


class FakeClient:
    def __init__(self) -> None:
        self.reason: str | None = None

    def close(self, reason: str) -> None:
        self.reason = reason


@pytest.mark.asyncio
async def test_the_stream_ends_once_the_session_is_revoked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "RECHECK_S", 0.0)
    answers = iter([True, True, False])
    asked = 0

    async def recheck() -> bool:
        nonlocal asked
        asked += 1
        return next(answers)

    client = FakeClient()
    await asyncio.wait_for(stream._still_valid(recheck, client), timeout=5)  # type: ignore[arg-type]
    assert asked == 3
    assert client.reason == "the session ended"


@pytest.mark.asyncio
async def test_a_valid_session_keeps_its_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "RECHECK_S", 0.0)
    asked = asyncio.Event()
    count = 0

    async def recheck() -> bool:
        nonlocal count
        count += 1
        if count >= 20:
            asked.set()
        return True

    client = FakeClient()
    task = asyncio.create_task(stream._still_valid(recheck, client))  # type: ignore[arg-type]
    await asyncio.wait_for(asked.wait(), timeout=5)
    task.cancel()
    assert client.reason is None


@pytest.mark.asyncio
async def test_streams_of_one_credential_share_one_query(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(stream.time, "monotonic", lambda: now[0])
    release = asyncio.Event()
    queries: list[str] = []

    def query(token: str, answer: bool):  # type: ignore[no-untyped-def]
        async def run() -> bool:
            queries.append(token)
            await release.wait()
            return answer
        return run

    checks = stream.SharedChecks()
    waiting = [checks.check("key-a", query("key-a", True)) for _ in range(50)]
    other = checks.check("key-b", query("key-b", False))
    release.set()
    assert await asyncio.gather(*waiting) == [True] * 50
    assert await other is False
    assert queries == ["key-a", "key-b"]

    now[0] += stream.SHARE_S  # the answer is too old now: the next stream's check asks again
    assert await checks.check("key-a", query("key-a", False)) is False
    assert queries == ["key-a", "key-b", "key-a"]
    assert set(checks.recent) == {"key-a"}  # key-b's old answer was dropped


@pytest.mark.asyncio
async def test_a_cancelled_stream_does_not_cancel_the_shared_query() -> None:
    release = asyncio.Event()

    async def query() -> bool:
        await release.wait()
        return True

    checks = stream.SharedChecks()
    first = asyncio.ensure_future(checks.check("key", query))
    second = checks.check("key", query)
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second is True


@pytest.mark.asyncio
async def test_rechecks_start_at_a_random_point_of_the_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream.random, "random", lambda: 0.25)
    slept = record_sleeps(monkeypatch, stream)

    async def recheck() -> bool:
        return False

    client = FakeClient()
    await stream._still_valid(recheck, client)  # type: ignore[arg-type]
    period = stream.RECHECK_S - stream.SHARE_S
    assert slept == [period * 0.25, period]
    assert period + stream.SHARE_S == stream.RECHECK_S  # a shared answer's age included: revoked ends in RECHECK_S
    assert client.reason == "the session ended"
