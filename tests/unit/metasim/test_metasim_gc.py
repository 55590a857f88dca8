"""The simulator's process waits longer between full collections: each one scans its whole request log."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from aerostic import cli
from metasim import server


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_the_simulator_runs_with_rare_full_collections(monkeypatch: pytest.MonkeyPatch, restored_gc: None) -> None:
    seen: list[tuple[int, int, int]] = []

    def run(config: Any, *, host: str, port: int) -> None:
        seen.append(gc.get_threshold())

    monkeypatch.setattr(server, "run", run)
    young, middle, _ = gc.get_threshold()
    assert cli.main(["metasim", "--host", "127.0.0.1", "--port", "1"]) == 0
    assert seen == [(young, middle, cli.SIM_FULL_COLLECTION_AFTER)]
    assert cli.SIM_FULL_COLLECTION_AFTER >= 100 * 10  # a hundred times rarer than CPython's default
