"""``LocalStack.stop_in_turn``: a group's processes are stopped one at a time, each once it has an assignment in
every consumer group it is in and the others have rejoined the groups it shared, read from their Prometheus text."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stack.launcher import LocalStack

DISPATCHER, SIGNUP = "aerostic-dispatcher", "aerostic-signup"
REBALANCE_SCRAPES = 4  # a member's leaving is rebalanced by the others' fourth scrape after it


class Members:
    """Each fake process's assignment counts by group, served as its metrics. ``(group, n)`` in ``pending[name]``:
    the process gets an assignment in ``group`` at its ``n``-th scrape from now (a join or rebalance the harness
    must wait for)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, float]] = {}
        self.pending: dict[str, list[tuple[str, int]]] = {}
        self.stopped: list[tuple[str, dict[str, dict[str, float]]]] = []
        self.mid_rebalance: list[str] = []  # processes stopped while a group of theirs had a join or rebalance due
        self.lock = threading.Lock()

    def text(self, name: str) -> str:
        with self.lock:
            for group, scrapes in self.pending.get(name, []):
                if scrapes == 1:
                    self.counts[name][group] += 1
            self.pending[name] = [(group, scrapes - 1) for group, scrapes in self.pending.get(name, []) if scrapes > 1]
            lines = ["# TYPE aerostic_consumer_assignments counter"]
            lines += [f'aerostic_consumer_assignments_total{{group="{group}"}} {count}'
                      for group, count in self.counts.get(name, {}).items()]
            return "\n".join(lines) + "\n"


@pytest.fixture
def members() -> Iterator[tuple[Members, int]]:
    state = Members()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.strip("/")
            if name not in state.counts:
                self.send_error(404)
                return
            body = state.text(name).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class Child:
    def __init__(self, members: Members, name: str, rebalanced: list[tuple[str, str]]) -> None:
        self.members, self.name, self.rebalanced = members, name, rebalanced

    def stop(self) -> None:
        """Record what every process counted at this stop; its leaving rebalances the others' groups in turn."""
        with self.members.lock:
            self.members.stopped.append((self.name, {k: dict(v) for k, v in self.members.counts.items()}))
            mine = self.members.counts[self.name]
            if any(group in mine for due in self.members.pending.values() for group, _ in due):
                self.members.mid_rebalance.append(self.name)
            del self.members.counts[self.name]
            if self.rebalanced:
                other, group = self.rebalanced.pop(0)
                self.members.pending.setdefault(other, []).append((group, REBALANCE_SCRAPES))


def stack_of(tmp_path: Any, port: int, members: Members, rebalanced: list[tuple[str, str]]) -> LocalStack:
    stack = LocalStack(root=tmp_path)
    stack.metrics_url = lambda name: f"http://127.0.0.1:{port}/{name}"  # type: ignore[method-assign]
    for name in members.counts:
        stack.children[name] = Child(members, name, rebalanced)  # type: ignore[assignment]
    return stack


def test_a_process_is_stopped_only_once_it_is_in_every_group(members: tuple[Members, int], tmp_path: Any) -> None:
    state, port = members
    state.counts = {"replies": {DISPATCHER: 1.0}, "bulk": {DISPATCHER: 1.0, SIGNUP: 0.0}}
    state.pending["bulk"] = [(SIGNUP, 8)]  # joins the signup group after the replies' leaving is rebalanced
    stack = stack_of(tmp_path, port, state, rebalanced=[("bulk", DISPATCHER)])
    stack.stop_in_turn(["replies", "bulk"])
    assert [name for name, _ in state.stopped] == ["replies", "bulk"] and state.mid_rebalance == []
    # The bulk process went only after the replies' leaving was rebalanced and its signup consumer had joined.
    assert state.stopped[1][1]["bulk"] == {DISPATCHER: 2.0, SIGNUP: 1.0}


def test_a_group_the_stopped_process_was_not_in_is_not_awaited(members: tuple[Members, int], tmp_path: Any) -> None:
    state, port = members
    state.counts = {"bulk": {DISPATCHER: 1.0, SIGNUP: 1.0}, "replies": {DISPATCHER: 1.0}}
    stack = stack_of(tmp_path, port, state, rebalanced=[("replies", DISPATCHER)])
    stack.stop_in_turn(["bulk", "replies"])
    assert [name for name, _ in state.stopped] == ["bulk", "replies"] and state.mid_rebalance == []
    assert state.stopped[1][1]["replies"] == {DISPATCHER: 2.0}


def test_a_process_that_never_joins_is_stopped_after_the_bound_with_a_warning(
        members: tuple[Members, int], tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import stack.launcher as launcher

    monkeypatch.setattr(launcher, "REJOIN_MAX_S", 0.3)
    state, port = members
    state.counts = {"bulk": {DISPATCHER: 1.0, SIGNUP: 0.0}}
    stack_of(tmp_path, port, state, rebalanced=[]).stop_in_turn(["bulk"])
    assert [name for name, _ in state.stopped] == ["bulk"]
    assert "bulk's assignment in each of its groups: not within" in caplog.text
