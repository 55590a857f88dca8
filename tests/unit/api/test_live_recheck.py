"""A live stream whose credential stops authenticating (session revoked or expired) is ended."""

from __future__ import annotations

import asyncio

import pytest

from api.live import stream


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
