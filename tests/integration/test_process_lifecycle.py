"""Worker processes whose broker went away back off instead of spinning, and stop on SIGTERM within a few
seconds whatever they are waiting on (a commit or a consumer close that the broker never answers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from stack.launcher import LocalStack
from stack.services import Service, start_broker, start_redis
from stack.topics import create_topics
from vault.cipher import generate_key_spec

WORKERS = ["streams", "campaigns", "projector", "ai", "dispatcher", "deliverer"]
STOP_BOUND_S = 15.0
WINDOW_S = 3.0
SETTLE_WINDOW_S = 1.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Service]:
    """A broker of this test's own (the shared one must stay up)."""
    service = start_broker(tmp_path)
    create_topics(service.url)
    yield service
    service.stop()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Service]:
    service = start_redis(tmp_path, tmp_path / "redis")
    yield service
    service.stop()


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _settled(processes: list[psutil.Process]) -> bool:
    """Past their imports and start-up: every process has used CPU, and each used under a tenth of a core over
    the same second (measured together: a process checked alone can start working while the others are checked,
    and on two shared cores a process still starting can look idle next to five others starting)."""
    before = [_cpu(p) for p in processes]
    if min(before) < 0.5:
        time.sleep(0.2)
        return False
    time.sleep(SETTLE_WINDOW_S)
    return all(_cpu(p) - b < 0.1 * SETTLE_WINDOW_S for p, b in zip(processes, before, strict=True))


def test_workers_whose_broker_and_redis_died_idle_and_stop_on_sigterm(stack: LocalStack, broker: Service,
                                                                      redis: Service) -> None:
    env = {**os.environ, "AEROSTIC_ENVIRONMENT": "test", "KAFKA_BOOTSTRAP_SERVERS": broker.url,
           "DATABASE_URL": stack.database_url, "REDIS_URL": redis.url,
           "AEROSTIC_VAULT_KEYS": generate_key_spec("lifecycle-1")}
    children = [subprocess.Popen([sys.executable, "-m", "aerostic", name], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL) for name in WORKERS]
    try:
        processes = [psutil.Process(p.pid) for p in children]
        deadline = time.monotonic() + 60
        while not _settled(processes):
            assert time.monotonic() < deadline, "the workers did not settle on their broker"
        broker.stop()
        redis.stop()

        start = [_cpu(p) for p in processes]
        time.sleep(WINDOW_S)  # a measurement window, not a synchronisation
        busy = {name: round((_cpu(p) - before) / WINDOW_S, 2)
                for name, p, before in zip(WORKERS, processes, start, strict=True)}
        assert all(share < 0.3 for share in busy.values()), f"share of a core used, broker and Redis gone: {busy}"

        for child in children:
            child.send_signal(signal.SIGTERM)
        stopped_by = time.monotonic() + STOP_BOUND_S
        for name, child in zip(WORKERS, children, strict=True):
            try:
                child.wait(timeout=max(0.1, stopped_by - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still running {STOP_BOUND_S:.0f} s after SIGTERM")
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
