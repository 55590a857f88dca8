"""Recording a module's ``asyncio.sleep`` calls instead of sleeping, without touching anyone else's.

``monkeypatch.setattr(module.asyncio, "sleep", fake)`` replaces ``sleep`` in the one ``asyncio`` module every
coroutine shares: any task left on the loop that sleeps in a loop then spins through the fake (a unit test once
recorded 364,337 waits where it expected 7). ``record_sleeps`` replaces the module's own ``asyncio`` name instead.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest


class RecordedSleeps:
    """Stands in for ``asyncio`` in one module: ``sleep`` records its seconds and returns at once."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float, result: Any = None) -> Any:
        self.slept.append(seconds)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def record_sleeps(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[float]:
    """The seconds ``module`` asks ``asyncio.sleep`` for from now on (none of them slept)."""
    fake = RecordedSleeps()
    monkeypatch.setattr(module, "asyncio", fake)
    return fake.slept
