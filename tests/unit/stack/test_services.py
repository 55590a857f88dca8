"""The local stack's services: Redis reached through its Unix socket (TCP where the socket's path cannot be), and
the broker's runtime threads."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from stack.services import BROKER_RUNTIME_THREADS, UNIX_PATH_MAX, start_broker, start_redis


def _pings(url: str) -> bool:
    client = redis.Redis.from_url(url)
    try:
        return bool(client.ping())
    finally:
        client.close()


def test_redis_is_reached_through_its_socket_and_over_tcp(tmp_path: Path) -> None:
    root = tmp_path / "a b"  # a path a URL must quote
    service = start_redis(root / "log", root / "data")
    try:
        assert service.url.startswith("unix://") and _pings(service.url)
        assert service.extra["tcp_url"].startswith("redis://127.0.0.1:") and _pings(service.extra["tcp_url"])
    finally:
        service.stop()


def test_a_data_directory_too_deep_for_a_socket_keeps_tcp(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * UNIX_PATH_MAX)
    service = start_redis(deep / "log", deep / "data")
    try:
        assert service.url == service.extra["tcp_url"] and _pings(service.url)
    finally:
        service.stop()


def _worker_threads(pid: int) -> int:
    """How many tokio worker threads the process runs (their names, from /proc)."""
    tasks = Path(f"/proc/{pid}/task")
    return sum((task / "comm").read_text().strip() == "tokio-rt-worker" for task in tasks.iterdir())


def test_the_broker_runs_one_runtime_worker_unless_the_caller_says_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKIO_WORKER_THREADS", raising=False)
    service = start_broker(tmp_path)
    try:
        assert _worker_threads(service.child.pid) == int(BROKER_RUNTIME_THREADS) == 1
    finally:
        service.stop()
    monkeypatch.setenv("TOKIO_WORKER_THREADS", "2")
    service = start_broker(tmp_path)
    try:
        assert _worker_threads(service.child.pid) == 2
    finally:
        service.stop()
