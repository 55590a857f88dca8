"""Every child of the launcher dies with it, however it ends, SIGKILL included.

A small parent process starts children with the launcher's own helpers (``stack.processes``,
``stack.services``), the test SIGKILLs the parent and polls, up to a deadline, until the children are gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.processes import die_with_parent, spawn
from stack.services import start_postgres

ROOT = Path(__file__).resolve().parents[3]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
_watched: list[Proc] = []  # children the tests look at: killed at the end if a test failed before they died

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None when there is no such pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


class Proc:
    """A process identified by pid *and* start time, so that a reused pid is not mistaken for it."""

    def __init__(self, pid: int) -> None:
        stat = _stat(pid)
        assert stat is not None, f"process {pid} is not running"
        self.pid, self.started = pid, stat[19]
        _watched.append(self)

    def gone(self) -> bool:
        stat = _stat(self.pid)
        return stat is None or stat[19] != self.started or stat[0] in ("Z", "X")


def _group(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] not in ("Z", "X") and int(stat[2]) == pgid:
                members.append(int(entry.name))
    return members


def _until(check: object, what: str, timeout: float = 20.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def parent() -> Iterator[list[subprocess.Popen[str]]]:
    """Start parent processes running a script; they, and children a failing test left, are killed at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    while _watched:
        child = _watched.pop()
        if not child.gone():
            os.kill(child.pid, signal.SIGKILL)


def _start_parent(started: list[subprocess.Popen[str]], script: str, *args: str) -> tuple[subprocess.Popen[str],
                                                                                              list[str]]:
    """Run ``script`` in a new Python process; return it and the first line it prints, split."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    started.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the script prints once its children run, or exits (EOF) on failure
    assert line, f"the parent exited with {proc.wait()} before starting its children"
    return proc, line.split()


SPAWNING_PARENT = """
    import sys, threading, time
    from stack.processes import spawn
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]
    if sys.argv[1] == "main":
        child = spawn(argv)
    else:  # from a short-lived thread: the child must outlive the thread, not the process
        box = []
        thread = threading.Thread(target=lambda: box.append(spawn(argv)))
        thread.start()
        thread.join()
        time.sleep(0.3)  # well after the thread's exit
        child = box[0]
    print(child.pid, flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("spawned_from", ["main", "thread"])
def test_a_child_dies_when_its_parent_is_killed(parent: list[subprocess.Popen[str]], spawned_from: str) -> None:
    proc, (pid,) = _start_parent(parent, SPAWNING_PARENT, spawned_from)
    child = Proc(int(pid))
    assert not child.gone(), "the child died before its parent"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _until(child.gone, "the child to die with its parent")


def test_a_child_whose_parent_died_before_prctl_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: the child finds it has already been given to another parent, and exits before exec."""
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: 1)  # the hook now expects a parent that is not ours
        hook = die_with_parent()
    assert hook is not None
    child = subprocess.Popen(SLEEPER, preexec_fn=hook)
    assert child.wait(timeout=10) == 125


def test_spawn_from_a_thread_returns_a_working_child() -> None:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        child = pool.submit(spawn, [sys.executable, "-c", "print('ok')"], stdout=subprocess.PIPE).result()
    out, _ = child.communicate(timeout=30)
    assert out.strip() == b"ok"


SERVICES_PARENT = """
    import sys, time
    from pathlib import Path
    from stack.services import start_postgres, start_redis
    root = Path(sys.argv[1])
    redis = start_redis(root / "logs", root / "redis")
    postgres = start_postgres(root / "logs", root / "postgres")
    print(redis.child.pid, postgres.child.pid, flush=True)
    time.sleep(120)
"""


def test_redis_and_postgres_die_with_the_launcher(parent: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    # First the orderly way, in this process: stop() is PostgreSQL's fast shutdown (no waiting for clients).
    service = start_postgres(tmp_path / "logs", tmp_path / "postgres")
    pgdata = tmp_path / "postgres" / "pgdata"
    assert (pgdata / "postmaster.pid").exists()
    started = time.monotonic()
    service.stop()
    assert service.child.proc is not None and service.child.proc.returncode == 0
    assert time.monotonic() - started < 10
    assert not (pgdata / "postmaster.pid").exists()

    # Then the launcher is SIGKILLed: Redis and the postmaster with its backends all go, PostgreSQL cleanly.
    proc, pids = _start_parent(parent, SERVICES_PARENT, str(tmp_path))
    redis, postgres = (Proc(int(pid)) for pid in pids)
    assert _group(postgres.pid), "the postmaster's process group is empty"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _until(redis.gone, "redis to die with its parent")
    _until(postgres.gone, "postgres to die with its parent")
    _until(lambda: not _group(postgres.pid), "postgres's backends to exit")
    _until(lambda: not (pgdata / "postmaster.pid").exists(), "postgres to remove its pid file (immediate shutdown)")
