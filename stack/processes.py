"""Child processes of the local stack: started in their own session, never left behind.

Dying with the parent
---------------------
Every child is started through :func:`spawn` (long-running) or :func:`run` (short commands). On Linux the
child calls ``prctl(PR_SET_PDEATHSIG, death_signal)`` between ``fork()`` and ``exec()``: the kernel sends it
``death_signal`` when its parent dies, however the parent ends, SIGKILL included. Three details:

- The race. The parent may die between ``fork()`` and ``prctl()``; the child has then already been given
  to another parent and would never be signalled. The hook compares ``os.getppid()`` with the pid of the
  process that spawned it, after the ``prctl()``, and exits at once when they differ.
- Threads. The kernel's "parent" is the *thread* that forked, not the process: a child forked by a worker
  thread (``asyncio.to_thread``, a thread pool, a helper thread) is signalled when that thread exits, while
  the launcher goes on. :func:`spawn` therefore forks only from the main thread (which lives as long as the
  process); called from any other thread it hands the ``fork()`` to one daemon spawner thread that is never
  stopped, and waits for the result. :func:`run` forks from the calling thread: that thread waits for the
  command to finish, so it outlives it.
- Credentials. The setting is cleared when the child changes its effective uid or gid and when it executes a
  set-uid binary. ``subprocess`` calls the hook after it switched to ``user=``, so it survives; the binaries
  started here are not set-uid.

The death signal is SIGKILL unless a child asks for another: a polite SIGTERM lets a process start a
graceful shutdown that can hang when its broker or database dies at the same moment (a dispatcher draining
towards a dead broker held PostgreSQL's smart shutdown open, and both outlived ``aerostic bench dispatch``).
PostgreSQL asks for SIGQUIT, its immediate shutdown: the postmaster stops its backends and removes its
shared memory and pid file, which SIGKILL would leave behind.

``Child.stop()`` is the orderly way: ``stop_signal`` (to the child's process group, or to the child alone),
then SIGKILL of the group after a grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    """libc's ``prctl`` on Linux (resolved once, in the parent: the pre-exec hook must do no loading)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _load_prctl()


def die_with_parent(death_signal: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``death_signal`` when this process dies (None off Linux).

    Built in the parent, so the expected parent pid is this process's; the hook itself only calls ``prctl``,
    ``getppid`` and ``_exit`` (no imports, no allocation beyond the interpreter's own).
    """
    if _prctl is None:
        return None
    parent = os.getpid()
    prctl = _prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)  # cannot fail for a valid signal number
        if os.getppid() != parent:  # the parent died before prctl: nobody will ever signal us
            os._exit(125)

    return hook


class _Spawner:
    """One daemon thread, alive until the process exits, that forks for callers on other threads."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # not yet, or we are a fork()ed copy
                self._thread = threading.Thread(target=self._loop, name="aerostic-spawner", daemon=True)
                self._thread.start()
        future: Future[Any] = Future()
        self._requests.put((fn, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            fn, future = self._requests.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


_spawner = _Spawner()


def spawn(argv: Sequence[str], *, death_signal: int = signal.SIGKILL, **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen)`` for a long-running child that dies with this process.

    The child is forked by the main thread, or by the spawner thread when called from another thread (see
    the module's docstring). ``preexec_fn`` is ours; everything else is passed to ``Popen``.
    """
    if "preexec_fn" in popen:
        raise TypeError("spawn() sets preexec_fn itself")
    hook = die_with_parent(death_signal)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(argv), preexec_fn=hook, **popen)

    if threading.current_thread() is threading.main_thread():
        return start()
    started: subprocess.Popen[bytes] = _spawner.call(start)
    return started


def run(argv: Sequence[str], *, death_signal: int = signal.SIGKILL, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` for a short command (initdb, psql…) that dies with this process.

    Forked by the calling thread, which waits for it and so outlives it.
    """
    if "preexec_fn" in kwargs:
        raise TypeError("run() sets preexec_fn itself")
    return subprocess.run(list(argv), preexec_fn=die_with_parent(death_signal), **kwargs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``check`` until it is true; raise ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


class Child:
    """One supervised child process with its log file.

    ``death_signal``: what the child gets when this process dies (see the module's docstring).
    ``stop_signal``: what ``stop()`` sends first, to the child's whole process group, or to the child alone
    when ``stop_group`` is false (PostgreSQL: the postmaster must be the one to shut its backends down).
    """

    def __init__(self, name: str, argv: Sequence[str], *, log_dir: Path, env: dict[str, str] | None = None,
                 user: str | None = None, cwd: Path | None = None, death_signal: int = signal.SIGKILL,
                 stop_signal: int = signal.SIGTERM, stop_group: bool = True) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        self.user = user
        self.cwd = cwd
        self.death_signal = death_signal
        self.stop_signal = stop_signal
        self.stop_group = stop_group
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logfile = self.log_path.open("ab")
        try:
            self.proc = spawn(self.argv, death_signal=self.death_signal, stdout=logfile, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=self.env, user=self.user, cwd=self.cwd,
                              start_new_session=True)
        finally:
            logfile.close()
        log.info("started %s (pid %s), log %s", self.name, self.proc.pid, self.log_path)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group at once (crash simulation)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace: float = 10.0) -> None:
        """``stop_signal``, then SIGKILL of the process group for whatever is left after ``grace`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.stop_group:
                os.killpg(self.proc.pid, self.stop_signal)
            else:
                os.kill(self.proc.pid, self.stop_signal)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing", self.name, grace)
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""
