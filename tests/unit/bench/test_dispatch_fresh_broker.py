"""``aerostic bench dispatch``: a lanes set-up starts on an empty embedded broker; an adopted broker is left alone."""

from __future__ import annotations

from typing import Any

import bench.dispatch as dispatch


class _Stack:
    def __init__(self, services: dict[str, Any], events: list[str]) -> None:
        self.services = services
        self.events = events

    def restart_broker(self) -> None:
        self.events.append("restart")


class _Producer:
    def __init__(self, name: str, events: list[str]) -> None:
        self.name = name
        self.events = events

    def flush(self, _timeout: float) -> int:
        self.events.append(f"flush {self.name}")
        return 0


def _bench(services: dict[str, Any], events: list[str]) -> dispatch.Bench:
    bench = dispatch.Bench.__new__(dispatch.Bench)
    bench.stack = _Stack(services, events)  # type: ignore[assignment]
    bench.producer = _Producer("old", events)  # type: ignore[assignment]
    bench._producer = lambda: _Producer("new", events)  # type: ignore[assignment,method-assign]
    return bench


def test_the_embedded_broker_is_restarted_after_what_was_queued_left() -> None:
    events: list[str] = []
    bench = _bench({"kafka": object()}, events)
    bench.fresh_broker()
    assert events == ["flush old", "restart"]
    assert bench.producer.name == "new"  # type: ignore[union-attr]


def test_an_adopted_broker_is_left_as_it_is() -> None:
    events: list[str] = []
    bench = _bench({}, events)
    bench.fresh_broker()
    assert events == []
    assert bench.producer.name == "old"  # type: ignore[union-attr]


def test_every_dispatcher_set_up_starts_on_an_empty_broker(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    events: list[str] = []

    class Stop(Exception):
        pass

    def start_dispatcher(**_settings: str) -> None:
        events.append("dispatcher started")
        raise Stop

    monkeypatch.setattr(dispatch.Bench, "fresh_broker", lambda _self: events.append("fresh"))
    bench = dispatch.Bench.__new__(dispatch.Bench)
    bench.stack = _Stack({"kafka": object()}, events)  # type: ignore[assignment]
    bench.stack.scale = {}  # type: ignore[attr-defined]
    bench.stack.children = {}  # type: ignore[attr-defined]
    bench.stack.start_dispatcher = start_dispatcher  # type: ignore[attr-defined]
    bench.vault_keys = "keys"
    for _ in range(2):
        try:
            with bench.dispatcher():
                pass
        except Stop:
            pass
    assert events == ["fresh", "dispatcher started", "fresh", "dispatcher started"]
