"""The local stack's Redis is reached through its Unix socket, and over TCP where the socket's path cannot be."""

from __future__ import annotations

from pathlib import Path

import redis

from stack.services import UNIX_PATH_MAX, start_redis


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
