"""The simulator's and the dispatcher's processes wait longer between full collections: each one pauses the event
loop, and a pause longer than the pacer makes up is a campaign's lost sends."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from aerostic import cli
from dispatcher import service
from metasim import server
from vault.cipher import generate_key_spec


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
    assert seen == [(young, middle, cli.FULL_COLLECTION_AFTER)]
    assert cli.FULL_COLLECTION_AFTER >= 100 * 10  # a hundred times rarer than CPython's default


def test_the_dispatcher_runs_with_rare_full_collections(monkeypatch: pytest.MonkeyPatch, restored_gc: None) -> None:
    seen: list[tuple[int, int, int]] = []

    def run(settings: Any) -> None:
        seen.append(gc.get_threshold())

    monkeypatch.setattr(service, "run", run)
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", "test")
    monkeypatch.setenv("AEROSTIC_VAULT_KEYS", generate_key_spec("unit-1"))
    monkeypatch.setattr(cli, "_observed", lambda settings: settings)  # no metrics server, no niceness
    young, middle, _ = gc.get_threshold()
    assert cli.main(["dispatcher"]) == 0
    assert seen == [(young, middle, cli.FULL_COLLECTION_AFTER)]
