"""The local stack: broker, PostgreSQL and Redis, topics, migrations, then Aerostic's processes.

Used by ``aerostic dev`` and by the test session. A service whose URL is set in the
environment (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``REDIS_URL``) is used instead of
starting the embedded one. ``stop()`` stops everything this stack started, in reverse order, and removes
its data (PostgreSQL's, Redis's, the media) unless ``keep_data``: the logs stay for a post-mortem. It also
runs at interpreter exit if nobody called it. Whatever way this process ends (an uncaught signal,
SIGKILL), every child dies with it: see ``stack.processes``.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from db.migrate import upgrade
from dispatcher.idempotency import mark_epoch
from stack.processes import Child, free_port, wait_until
from stack.scale import process_names
from stack.services import Service, start_broker, start_postgres, start_redis
from stack.topics import create_topics

log = logging.getLogger(__name__)
T = TypeVar("T")

DATA_DIRS = ("postgres", "redis", "media")  # under the stack's root, removed by ``stop()``; ``logs`` is kept
# The commands that serve Prometheus metrics (broker.metrics_http): each child gets a port of its own.
METRICS_COMMANDS = frozenset({"ingress", "streams", "campaigns", "projector", "ai", "dispatcher", "deliverer"})


# The roles off a customer's reply path run at this Unix niceness (``AEROSTIC_CPU_NICE``; a value in the stack's
# own environment wins): the projector (the inbox's view of a message) and the webhook deliverer (a tenant's copy
# of it) may fall behind in a busy spell, a customer's reply and a campaign's sends should not.
BACKGROUND_NICE = 10
REJOIN_MAX_S = 30.0  # ``stop_in_turn``: how long the remaining members of a group may take to rejoin it

# Partitions per topic at most on the embedded broker the stack starts itself (``LocalStack.max_partitions``; at least
# the largest ``--scale``, so each process of a role has a partition). Its memory engine keeps each produced batch as
# an object per partition and lists all of a partition's objects on every fetch that finds records: a produce spread
# over six partitions makes up to six objects where two make two. ``bench e2e``, alternated: the broker 2.8-2.9 ms a
# question at 200/s against 3.3-3.4, p99 184-198 ms against 207-274, ``cpu_ms_per_q`` 15.9 against 18.4-18.5. One
# partition saves a little more, but the broker serves a partition's produce requests one after another: the ingress
# flood (``bench ingress``) carried 12,500-12,600 requests a second into one against 13,700-14,000 into two.
# A broker the stack adopts (``KAFKA_BOOTSTRAP_SERVERS``, e.g. Apache Kafka) gets the catalogue's partitions.
EMBEDDED_MAX_PARTITIONS = 2


@dataclass
class LocalStack:
    """Backing services plus Aerostic child processes sharing one environment."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aerostic-stack-")))
    topic_prefix: str = ""
    environment: str = "development"  # AEROSTIC_ENVIRONMENT of every child ("test" for the test session)
    extra_env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)
    kafka: str = ""
    database_url: str = ""
    redis_url: str = ""
    ingress_url: str = ""
    metasim_url: str = ""
    metasim_port: int = 0  # chosen before the ingress starts: its OAuth dialog is the simulator's
    sim_app_secret: str = ""
    metrics: bool = True  # give every Aerostic process a metrics port (listed in ``metrics_ports``)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # child name → its /metrics port on 127.0.0.1
    scale: dict[str, int] = field(default_factory=dict)  # role → processes of it (``--scale``; default 1)
    pg_statements: bool = False  # load pg_stat_statements in the embedded PostgreSQL (``bench.pg_stats``)
    keep_data: bool = False  # ``stop()`` leaves the data directories (``aerostic dev --keep-data``)
    max_partitions: int | None = EMBEDDED_MAX_PARTITIONS  # on a broker it starts; None: the catalogue's counts
    _stop_at_exit: bool = field(default=False, init=False, repr=False)

    def _started(self) -> None:
        """Stop this stack at interpreter exit too (an exception or ``sys.exit`` that skipped ``stop()``)."""
        if not self._stop_at_exit:
            self._stop_at_exit = True
            atexit.register(self.stop)

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def start_services(self) -> LocalStack:
        """Start (or adopt from the environment) the broker, PostgreSQL and Redis."""
        self.kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or self._start(
            "kafka", lambda: start_broker(self.log_dir))
        self.database_url = os.environ.get("DATABASE_URL") or self._start(
            "postgres", lambda: start_postgres(self.log_dir, self.root / "postgres", statements=self.pg_statements))
        self.redis_url = os.environ.get("REDIS_URL") or self._start(
            "redis", lambda: start_redis(self.log_dir, self.root / "redis"))
        return self

    def _start(self, name: str, starter: object) -> str:
        assert callable(starter)
        self._started()
        service: Service = starter()
        self.services[name] = service
        log.info("%s ready at %s", name, service.url)
        return service.url

    def prepare(self) -> None:
        """Create every catalogued topic, apply the migrations, mark the start of Redis's idempotency state."""
        create_topics(self.kafka, self.topic_prefix, max_partitions=self.partitions_cap())
        upgrade(self.database_url)
        mark_epoch(self.redis_url)

    def partitions_cap(self) -> int | None:
        """The most partitions a topic gets: ``max_partitions`` (raised to the largest ``scale``) on the broker
        this stack started, None (the catalogue's) on one it adopted."""
        if self.max_partitions is None or "kafka" not in self.services:
            return None
        return max(self.max_partitions, *self.scale.values(), 1)

    def env(self) -> dict[str, str]:
        """The environment every Aerostic child process gets."""
        services = {"KAFKA_BOOTSTRAP_SERVERS": self.kafka, "DATABASE_URL": self.database_url,
                    "REDIS_URL": self.redis_url}
        return {**os.environ, **{k: v for k, v in services.items() if v}, "AEROSTIC_TOPIC_PREFIX": self.topic_prefix,
                "AEROSTIC_ENVIRONMENT": self.environment, "PYTHONUNBUFFERED": "1",
                "AEROSTIC_MEDIA_DIR": str(self.root / "media"), **self.extra_env}  # one media store for all

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        """Run ``aerostic <args>`` as a supervised child named ``name`` (``env`` only for this child)."""
        self._started()
        extra = dict(env or {})
        if self.metrics and args and args[0] in METRICS_COMMANDS:
            self.metrics_ports[name] = port = free_port()
            extra.setdefault("AEROSTIC_METRICS_PORT", str(port))
        child = Child(name, [sys.executable, "-m", "aerostic", *args], log_dir=self.log_dir,
                      env={**self.env(), **extra}, cwd=self.root).start()
        self.children[name] = child
        return child

    def spawn_role(self, role: str, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        """``spawn`` ``self.scale[role]`` processes (default 1) named ``name``, ``name-2`` …; return the first."""
        children = [self.spawn(each, *args, env=env) for each in process_names(name, self.scale.get(role, 1))]
        return children[0]

    def _background(self) -> dict[str, str]:
        """A background role's environment: ``BACKGROUND_NICE`` unless the stack's environment (the caller's, or
        ``extra_env``) sets ``AEROSTIC_CPU_NICE``."""
        return {"AEROSTIC_CPU_NICE": self.env().get("AEROSTIC_CPU_NICE", str(BACKGROUND_NICE))}

    def metrics_url(self, name: str) -> str:
        """Where the child ``name`` serves its Prometheus metrics."""
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def start_ingress(self, port: int | None = None) -> str:
        """Run the ingress; Embedded Signup's dialog is the simulator's (started later on ``metasim_port``)."""
        port = port or free_port()
        self.metasim_port = self.metasim_port or free_port()
        url = f"http://127.0.0.1:{port}"
        child = self.spawn("ingress", "ingress", "--host", "127.0.0.1", "--port", str(port), env={
            "AEROSTIC_PUBLIC_URL": url, "AEROSTIC_OAUTH_DIALOG_URL": f"http://127.0.0.1:{self.metasim_port}"})
        wait_until(lambda: _healthy(url) or not child.alive(), timeout=120, what="ingress", interval=0.1)
        if not child.alive():
            raise RuntimeError(f"ingress exited:\n{child.tail()}")
        self.ingress_url = url
        return url

    def start_streams(self) -> Child:
        return self.spawn_role("streams", "streams", "streams")

    def start_campaigns(self) -> Child:
        """Run the campaign worker (expander, recipients, funnel, scheduler)."""
        return self.spawn_role("campaigns", "campaigns", "campaigns")

    def start_projector(self) -> Child:
        return self.spawn_role("projector", "projector", "projector", env=self._background())

    def start_deliverer(self, **settings: str) -> Child:
        """Run the webhook deliverer (``settings``: DelivererSettings fields, e.g. ``webhook_retry_base_s``)."""
        return self.spawn_role("deliverer", "deliverer", "deliverer",
                               env={**self._background(), **{f"AEROSTIC_{k.upper()}": v for k, v in settings.items()}})

    def start_ai(self, **settings: str) -> Child:
        """Run the AI worker (``settings``: AiSettings fields, e.g. ``openai_base_url``)."""
        return self.spawn_role("ai", "ai", "ai", env={f"AEROSTIC_{k.upper()}": v for k, v in settings.items()})

    def start_metasim(self, *, app_secret: str, port: int | None = None, **config: str) -> str:
        """Run the Meta simulator, posting its webhooks to this stack's ingress (``config``: SimConfig fields)."""
        port = port or self.metasim_port or free_port()
        self.metasim_port, self.sim_app_secret = port, app_secret
        child = self.spawn("metasim", "metasim", "--host", "127.0.0.1", "--port", str(port), env={
            "METASIM_CALLBACK_URL": f"{self.ingress_url}/webhooks/meta", "METASIM_APP_SECRET": app_secret,
            **{f"METASIM_{k.upper()}": v for k, v in config.items()}})
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(url, "/_sim/health") or not child.alive(), timeout=120, what="metasim",
                   interval=0.1)
        if not child.alive():
            raise RuntimeError(f"metasim exited:\n{child.tail()}")
        self.metasim_url = url
        return url

    def start_dispatcher(self, *, vault_keys: str, name: str = "dispatcher", **settings: str) -> Child:
        """Run the dispatcher against the simulator; only this child gets the vault keys (and the app secret). With
        ``scale["replies"]``, that many dispatchers named ``<name>-replies`` … send the interactive lane and these the
        rest."""
        env = {"AEROSTIC_VAULT_KEYS": vault_keys, "AEROSTIC_GRAPH_BASE_URL": self.metasim_url,
               "AEROSTIC_META_APP_SECRET": self.sim_app_secret,
               **{f"AEROSTIC_{k.upper()}": v for k, v in settings.items()}}
        if self.scale.get("replies"):
            self.spawn_role("replies", f"{name}-replies", "dispatcher", env={**env, "AEROSTIC_LANES": "interactive"})
            env["AEROSTIC_LANES"] = "bulk"
        return self.spawn_role("dispatcher", name, "dispatcher", env=env)

    def stop_in_turn(self, names: list[str]) -> None:
        """Stop the children ``names`` (any role: each counts its partition assignments per consumer group,
        ``aerostic_consumer_assignments_total``, in ``broker.consumer.subscribe``) one at a time and never during a
        rebalance: each once it has an assignment in every group it is in, and the others have taken part in the
        rebalance its leaving began in each group they share. The embedded broker kept a group's leader that left during
        a rebalance (before its SyncGroup, or while another member's leaving was being rebalanced): a later member then
        never got an assignment (seen stopping a dispatcher right after it joined, and two at once or one right after
        the other; and in the signup group, stopping a dispatcher whose signup consumer had only just joined)."""
        for at, name in enumerate(names):
            groups = self._await(f"{name}'s assignment in each of its groups", partial(self._assignments, name),
                                 lambda counts: bool(counts) and all(counts.values()))
            before = {other: {group: count for group, count in self._assignments(other).items() if group in groups}
                      for other in names[at + 1:]}
            self.children[name].stop()
            self._await(f"the rebalance after {name} left", partial(self._rejoined, before), bool)

    @staticmethod
    def _await(what: str, read: Callable[[], T], done: Callable[[T], bool]) -> T:
        """Read until ``done`` says the value read is the one awaited (a warning after ``REJOIN_MAX_S``); the last
        value read."""
        last: list[T] = []

        def check() -> bool:
            last[:] = [read()]
            return done(last[0])
        try:
            wait_until(check, timeout=REJOIN_MAX_S, what=what, interval=0.1)
        except TimeoutError:
            log.warning("%s: not within %.0fs", what, REJOIN_MAX_S)
        return last[0]

    def _rejoined(self, before: dict[str, dict[str, float]]) -> bool:
        """Each child of ``before`` has received more assignments in each group than it counts there."""
        return all(self._assignments(name).get(group, 0.0) > count
                   for name, counts in before.items() for group, count in counts.items())

    def _assignments(self, name: str) -> dict[str, float]:
        """The partition assignments child ``name`` has received, by consumer group (its metrics; none if it does
        not answer)."""
        try:
            with urllib.request.urlopen(self.metrics_url(name), timeout=2) as resp:  # noqa: S310 - loopback only
                text = resp.read().decode()
        except OSError:
            return {}
        return {sample.labels["group"]: sample.value for family in text_string_to_metric_families(text)
                for sample in family.samples if sample.name == "aerostic_consumer_assignments_total"}

    def restart_broker(self) -> None:
        """Stop and start the embedded broker on the same port (memory storage: topics recreated)."""
        old = self.services["kafka"]
        old.stop()
        self.services["kafka"] = start_broker(self.log_dir, port=old.port)
        create_topics(self.kafka, self.topic_prefix, max_partitions=self.partitions_cap())

    def restart_redis(self, *, keep_data: bool) -> None:
        """Restart the embedded Redis on the same port: an orderly stop that keeps its append-only file, or a
        SIGKILL after which its data directory is emptied (Redis lost everything)."""
        old = self.services["redis"]
        data_dir = self.root / "redis"
        if keep_data:
            old.stop()
        else:
            old.child.kill()
            shutil.rmtree(data_dir, ignore_errors=True)
        self.services["redis"] = start_redis(self.log_dir, data_dir, port=old.port)

    def restart_postgres(self) -> None:
        """Stop the embedded PostgreSQL (fast shutdown: every client cut off) and start it on the same port and data."""
        old = self.services["postgres"]
        old.stop()
        self.services["postgres"] = start_postgres(self.log_dir, self.root / "postgres", port=old.port,
                                                   statements=self.pg_statements)

    def stop(self) -> None:
        """Stop every child, then every service, in reverse order; one that fails does not keep the rest up."""
        stoppables: list[tuple[str, Child | Service]] = [*reversed(self.children.items()),
                                                          *reversed(self.services.items())]
        for name, stoppable in stoppables:
            try:
                stoppable.stop()
            except Exception:
                log.exception("stopping %s failed", name)
        if not self.keep_data:  # hundreds of megabytes a stack: a test session or a bench must not pile them up
            for data in DATA_DIRS:
                shutil.rmtree(self.root / data, ignore_errors=True)


def _healthy(url: str, path: str = "/healthz") -> bool:
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=1) as resp:  # noqa: S310 - loopback only
            return bool(resp.status == 200)
    except OSError:
        return False
