"""``aerostic bench e2e``: a customer's question to the AI's answer, through the whole pipeline, against a bare relay.

Starts the local stack (broker, PostgreSQL, Redis, ingress, stream workers, projector, AI worker,
webhook deliverer, dispatcher and the Meta simulator with its status webhooks off, so that only the
question → answer path is loaded), connects a tenant whose knowledge base the offline scorer answers, then has
simulated customers (each a new conversation) ask at stepped rates (10, 25, 50, 75 … 1,000/s by default,
each held ``--seconds``; stepping stops after the first step that fails). The latency of one message
runs from the moment the simulator is asked to send the customer's webhook to the moment the reply
reaches the simulator's send endpoint (both on this machine's clock). A question without a reply when
its step's drain time ran out is lost; a customer answered twice is duplicated. A step passes when
the load generator held the rate (≥ 90 % of it, no failed sends), nothing was lost and p99 ≤ 250 ms.

The load generator (``ask``) never crashes and is not the bottleneck: requests in flight are bounded, its
kept-alive connections (``metasim.poster``'s bare HTTP/1.1 client: httpx cost ~3 ms of CPU per ask, as much as
the ingress's whole work) are sized to the rate, every request has a timeout, and a refused, failed or
timed-out send is counted (lost), so an overloaded step is reported with its achieved rate, p99 and lost.

In the same run: the bare relay (``bench.relay``: the same hops on the same broker, forwarding only; a second
simulator posts the webhooks to it and receives its Graph calls) is stepped the same way, in turn with the pipeline:
at each rate the two steps run back to back, the first of them alternating, each after the stack is back at rest
(``settle``), and the relay's hops rest (no fetch) while the pipeline steps; a chain stops stepping after its first
failing step (the relay is then stopped). So ``relay_ratio`` compares the same minutes of a machine whose speed
drifts (run one after the other, the ratio moved with it). A 40/s run measures
the CPU milliseconds per question of every process: the Aerostic processes from their own Prometheus metrics
(``process_cpu_seconds_total``), the broker, PostgreSQL, Redis, the simulator and the load generator (this process,
less its reading of the others: ``measuring``) with psutil. Before it the stack rests ``IDLE_S`` seconds: the table
shows each process's CPU per second at rest beside its CPU per question (the broker's idle fetches are a cost per
second, not per question). Each step's line is followed by its CPU (``step_cpu``): the broker's and the rest's per
question (the simulator and load generator left out), the broker's share of its one thread, and how many questions
the stack had carried before the step (the embedded broker's fetch lists every batch a partition holds). Before its
steps the relay carries the same 40/s: its CPU per question (``relay_floor``) is the transport's floor under
``cpu_ms_per_q``.

Ends with one line: ``RESULT e2e sustained_rps=… p99_ms=… cpu_ms_per_q=… relay_cpu_ms_per_q=… relay_rps=… relay_ratio=…
lost=… duplicated=… lost_at_first_failed_step=…`` (``p99_ms``: the sustained step's; ``lost``: over the passing
steps; ``duplicated``: over every step; ``cpu_ms_per_q``: every process but the simulator and load generator).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import httpcore  # noqa: F401 - httpx imports it on its first client: threads creating their first at once raced
import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from bench import pg_stats as bench_pg_stats
from bench.redis_stats import per_unit, redis_commands
from bench.relay import PARTITIONS as RELAY_PARTITIONS
from bench.relay import TOPICS, create_relay_topics
from bench.steps import DEFAULT_RATES, Step, in_flight_cap, percentile, pool_size, should_continue, sustained
from broker.producer import AsyncProducer
from config.settings import CoreSettings
from db.tables import knowledge_entries, tenant_settings
from metasim.poster import PostFailed, StreamPoster
from stack.launcher import LocalStack
from stack.processes import Child, free_port, port_open, wait_until
from tenants.commands import attach_number, create_tenant
from tenants.config import bump_config_version
from vault.cipher import Vault, generate_key_spec

SECRET = "bench-e2e-app-secret"  # noqa: S105 - the simulator's local app secret
CPU_RATE = 40  # the rate for ``cpu_ms_per_q``; ``--cpu-rate`` measures another
IDLE_S = 10.0  # the stack at rest before the CPU run: each process's CPU per second with nothing asked
REQUEST_TIMEOUT_S = 10.0
ASK_HEADERS = {"Content-Type": "application/json"}
SIM_CALLBACK_CONCURRENCY = "64"  # the simulator's webhook POSTs in flight: not the limit at 1,000/s
QUESTIONS = [
    ("How long does shipping take?", "Orders ship within 2 business days."),
    ("What is your return policy?", "Returns are free within 30 days."),
    ("Which payment methods do you accept?", "Cards, UPI and cash on delivery."),
    ("What are your opening hours?", "9am to 6pm, Monday to Saturday."),
    ("Do you ship internationally?", "Yes, to 40 countries."),
    ("How can I track my order?", "Use the tracking link in your confirmation email."),
]


_measuring_s = 0.0  # this process's CPU seconds spent so far reading the others: left out of the load generator's


def own_cpu_s() -> float:
    """This process's CPU seconds so far (user and system, every thread)."""
    return sum(psutil.Process().cpu_times()[:2])


@contextlib.contextmanager
def measuring() -> Iterator[None]:
    """The CPU this process spends in the block is the bench's measuring (scrapes of every process's metrics, Redis's
    command counts, the simulator's request log), not its load generator's: ``cpu_seconds`` leaves it out of
    ``loadgen``, whose figure otherwise counted the closing scrape of every step (about 0.8 s of CPU: 4.6 ms a
    question over 200 questions, 2.7 over 400)."""
    global _measuring_s
    began = own_cpu_s()
    try:
        yield
    finally:
        _measuring_s += own_cpu_s() - began


@dataclass
class Run:
    """One step: when each customer's question left, and when answers arrived."""

    rate: int
    asked: int = 0
    sent: dict[str, float] = field(default_factory=dict)
    answers: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    held_back: int = 0
    send_seconds: float = 0.0

    def latencies_ms(self) -> list[float]:
        return sorted((times[0] - self.sent[wa_id]) * 1000 for wa_id, times in self.answers.items()
                      if wa_id in self.sent and times)

    @property
    def unanswered(self) -> int:
        return sum(1 for wa_id in self.sent if not self.answers.get(wa_id))

    @property
    def duplicated(self) -> int:
        return sum(1 for times in self.answers.values() if len(times) > 1)

    def step(self) -> Step:
        latencies = self.latencies_ms()
        accepted = len(self.sent)
        return Step(rate=self.rate, asked=self.asked, sent=accepted, errors=self.errors,
                    lost=self.unanswered + self.errors, duplicated=self.duplicated,
                    achieved_rate=accepted / self.send_seconds if self.send_seconds else 0.0,
                    p50_ms=percentile(latencies, 0.5), p99_ms=percentile(latencies, 0.99), held_back=self.held_back)


class Sim:
    """A simulator, its number, and the load generator that makes its customers ask."""

    def __init__(self, url: str, pnid: str) -> None:
        self.url, self.pnid = url, pnid
        self.customers = 0

    async def run(self, rate: int, seconds: float, drain_s: float) -> Run:
        """Ask at ``rate`` for ``seconds`` (sending stops at twice that), then wait up to ``drain_s`` for answers."""
        result = Run(rate, asked=max(1, int(rate * seconds)))
        cap = in_flight_cap(rate, REQUEST_TIMEOUT_S)
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, pool=REQUEST_TIMEOUT_S)
        asker = StreamPoster(self.url + "/_sim/customers/messages", connections=pool_size(rate))
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=timeout) as sim:
            with contextlib.suppress(httpx.HTTPError):  # an overloaded simulator: its old requests are filtered out
                await sim.post("/_sim/reset")
            slots = asyncio.Semaphore(cap)
            began = time.perf_counter()
            stop_at = began + 2 * seconds
            tasks = []
            for i in range(result.asked):
                delay = began + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if slots.locked():
                    result.held_back += 1
                await slots.acquire()  # bounded: a slow system makes the sends fall behind, never pile up
                if time.perf_counter() > stop_at:
                    slots.release()
                    break
                self.customers += 1
                wa_id = f"91{self.customers:010d}"
                tasks.append(asyncio.create_task(self._ask(asker, slots, result, wa_id, QUESTIONS[i % 6][0])))
            issued = time.perf_counter() - began + 1.0 / rate  # the sends' window (their slow answers: latency)
            await asyncio.gather(*tasks)
            await asker.close()
            result.send_seconds = issued
            deadline = time.monotonic() + drain_s
            while True:
                await self._collect(sim, result)
                if result.unanswered == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.5)  # late duplicates would show up here
            await self._collect(sim, result)
        return result

    async def _ask(self, asker: StreamPoster, slots: asyncio.Semaphore, result: Run, wa_id: str,
                   question: str) -> None:
        at = time.time()  # the customer asked now: a wait for a connection counts in the latency
        body = json.dumps({"phone_number_id": self.pnid, "from": wa_id, "type": "text", "text": question}).encode()
        try:  # the timeout covers the wait for a connection too: a step's send phase ends in bounded time
            status = await asyncio.wait_for(asker.post(body, ASK_HEADERS, REQUEST_TIMEOUT_S), REQUEST_TIMEOUT_S)
            if status == 200:
                result.sent[wa_id] = at
            else:
                result.errors += 1
        except (PostFailed, TimeoutError):  # a timeout, a refused or broken connection: counted, never raised
            result.errors += 1
        finally:
            slots.release()

    async def _collect(self, sim: httpx.AsyncClient, result: Run) -> None:
        with measuring():  # the questions were all sent: nothing else runs on this loop meanwhile
            try:
                entries = (await sim.get("/_sim/requests", params={"phone_number_id": self.pnid},
                                         timeout=60)).json()["data"]
            except (httpx.HTTPError, ValueError, KeyError):
                return  # the next collection reads again
            answers: dict[str, list[float]] = {}
            for entry in entries:
                if entry["status"] == 200 and entry["recipient"]:
                    answers.setdefault(entry["recipient"], []).append(entry["time"])
            result.answers = {k: sorted(v) for k, v in answers.items()}


def _metrics_cpu(url: str) -> float | None:
    try:
        text = httpx.get(url, timeout=10).text
    except httpx.HTTPError:
        return None
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == "process_cpu_seconds_total")


def _psutil_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (PostgreSQL's backends)."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return 0.0


def cpu_seconds(stack: LocalStack, extra: dict[str, int] | None = None) -> dict[str, float]:
    """CPU seconds used so far by each process: Aerostic's from their metrics, the rest (and a process whose
    metrics do not answer) with psutil; ``loadgen`` is this process less its measuring (``measuring``)."""
    used: dict[str, float] = {"loadgen": own_cpu_s() - _measuring_s}
    with measuring():
        for name, child in stack.children.items():
            from_metrics = _metrics_cpu(stack.metrics_url(name)) if name in stack.metrics_ports else None
            used[name] = from_metrics if from_metrics is not None else _psutil_cpu(child.pid)
        for name, service in stack.services.items():
            used[name] = _psutil_cpu(service.child.pid)
        for name, pid in (extra or {}).items():
            used[name] = _psutil_cpu(pid)
    return used


HOP_METRIC = "aerostic_stream_hop_latency_seconds"


def hop_histograms(stack: LocalStack) -> dict[str, dict[float, float]]:
    """Every consumer group's hop-latency histogram so far, summed over the processes: ``{group: {le: count}}``
    with ``le=inf`` the count and ``le=-1`` the sum of seconds (a process whose metrics do not answer is left out)."""
    found: dict[str, dict[float, float]] = {}
    with measuring():
        for name in stack.metrics_ports:
            try:
                text = httpx.get(stack.metrics_url(name), timeout=10).text
            except httpx.HTTPError:
                continue
            for family in text_string_to_metric_families(text):
                if family.name != HOP_METRIC:
                    continue
                for sample in family.samples:
                    group = sample.labels.get("group", "?").removeprefix("aerostic-")
                    if sample.name.endswith("_bucket"):
                        le = float(sample.labels["le"])
                    elif sample.name.endswith("_sum"):
                        le = -1.0
                    else:
                        continue
                    bins = found.setdefault(group, {})
                    bins[le] = bins.get(le, 0.0) + sample.value
    return found


def hop_table(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> str:
    """Per group between two readings: batches observed, the mean hop latency and the bucket bounds of its p50
    and p99 (Kafka timestamp → handling, once per batch and partition: the fetch wait and the queue before it)."""
    rows = [f"{'hop (group)':<28}{'batches':>8}{'mean ms':>9}{'p50 ≤ ms':>10}{'p99 ≤ ms':>10}"]
    for group in sorted(after):
        bins = {le: n - before.get(group, {}).get(le, 0.0) for le, n in after[group].items()}
        count = bins.get(float("inf"), 0.0)
        if count <= 0:
            continue
        p50, p99 = (_bucket_bound(bins, count, q) for q in (0.5, 0.99))
        rows.append(f"{group:<28}{count:>8.0f}{1000 * bins.get(-1.0, 0.0) / count:>9.1f}{p50:>10.1f}{p99:>10.1f}")
    return "\n".join(rows)


def _bucket_bound(bins: dict[float, float], count: float, q: float) -> float:
    """The upper bound (ms) of the histogram bucket holding quantile ``q`` (cumulative buckets)."""
    return next((le for le in sorted(b for b in bins if b >= 0) if bins[le] >= q * count), float("inf")) * 1000


def cpu_per_question(before: dict[str, float], after: dict[str, float], questions: int) -> dict[str, float]:
    """CPU milliseconds per question of each process between two ``cpu_seconds`` readings."""
    if not questions:
        return {}
    return {name: 1000 * (after[name] - before.get(name, 0.0)) / questions for name in sorted(after)}


def cpu_per_second(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """CPU milliseconds per second of each process between two ``cpu_seconds`` readings ``seconds`` apart."""
    return {name: 1000 * (after[name] - before.get(name, 0.0)) / seconds for name in sorted(after)} if seconds else {}


def cpu_table(idle: dict[str, float], per_question: dict[str, float], rate: int) -> str:
    """Each process's CPU: ms per second with the stack idle, ms per question at ``rate`` (largest first) and
    the part of it the idle cost accounts for (idle ms/s ÷ rate)."""
    rows = [f"{'process':<14}{'idle ms/s':>10}{f'ms/q at {rate}/s':>16}{'of it idle':>12}"]
    for name in sorted(per_question, key=lambda n: -per_question[n]):
        still = idle.get(name, float("nan"))
        rows.append(f"{name:<14}{still:>10.1f}{per_question[name]:>16.1f}{still / rate:>12.1f}")
    return "\n".join(rows)


class E2E:
    def __init__(self, scale: dict[str, int] | None = None, pg_stats: bool = False) -> None:
        self.stack = LocalStack(extra_env={"AEROSTIC_APP_SECRETS": SECRET}, scale=dict(scale or {}),
                                pg_statements=pg_stats)
        self.vault_keys = generate_key_spec("bench")
        self.pnid = str(uuid.uuid4().int)[:15]
        self.relay: list[Child] = []
        self.relay_sim: Sim | None = None

    def start(self) -> Sim:
        stack = self.stack
        stack.start_services()
        stack.prepare()
        stack.start_ingress()
        stack.start_streams()
        stack.start_projector()
        stack.start_ai()
        stack.start_deliverer()  # tenants' webhooks: none registered, yet it reads every event
        stack.start_metasim(app_secret=SECRET, callback_concurrency=SIM_CALLBACK_CONCURRENCY)
        httpx.put(f"{stack.metasim_url}/_sim/webhooks", json={"enabled": False}).raise_for_status()
        stack.start_dispatcher(vault_keys=self.vault_keys)  # its defaults: 512 workers, 512 connections
        return Sim(stack.metasim_url, self.pnid)

    async def tenant(self) -> None:
        settings = CoreSettings(environment=self.stack.environment, kafka_bootstrap_servers=self.stack.kafka,
                                database_url=self.stack.database_url, redis_url=self.stack.redis_url)
        tenant_id = await create_tenant(settings, "bench e2e")
        waba, token = str(uuid.uuid4().int)[:15], uuid.uuid4().hex
        async with AsyncProducer(settings.kafka_bootstrap_servers) as producer:
            await attach_number(settings, producer, tenant_id=tenant_id, phone_number_id=self.pnid, waba_id=waba,
                                throughput_mps=1000, token=token, vault=Vault.from_spec(self.vault_keys))
        async with httpx.AsyncClient(base_url=self.stack.metasim_url) as sim:
            (await sim.post("/_sim/numbers", json={"phone_number_id": self.pnid, "waba_id": waba, "token": token,
                                                   "throughput": 1000})).raise_for_status()
        engine = create_async_engine(self.stack.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(tenant_settings.insert().values(tenant_id=tenant_id, ai_provider="offline",
                                                                   ai_threshold=0.7))
                await conn.execute(knowledge_entries.insert(), [
                    {"id": str(uuid.uuid4()), "tenant_id": tenant_id, "question": q, "answer": a, "keywords": []}
                    for q, a in QUESTIONS])
        finally:
            await engine.dispose()
        redis = Redis.from_url(self.stack.redis_url)
        try:
            await bump_config_version(redis, tenant_id)
        finally:
            await redis.aclose()

    def start_relay(self) -> Sim:
        """The bare relay chain and a second simulator whose webhooks go to it and whose Graph it calls."""
        stack = self.stack
        prefix = "bench."
        create_relay_topics(stack.kafka, prefix, stack.partitions_cap() or RELAY_PARTITIONS)
        relay_port, sim_port = free_port(), free_port()
        base = [sys.executable, "-m", "bench.relay"]
        common = ["--bootstrap", stack.kafka, "--prefix", prefix]
        env = stack.env()
        pnid, waba, token = str(uuid.uuid4().int)[:15], str(uuid.uuid4().int)[:15], uuid.uuid4().hex
        sim_url = f"http://127.0.0.1:{sim_port}"

        def child(name: str, argv: list[str], extra: dict[str, str] | None = None) -> Child:
            started = Child(name, argv, log_dir=stack.log_dir, env={**env, **(extra or {})}, cwd=stack.root).start()
            self.relay.append(started)
            return started

        child("relay-ingress", [*base, "ingress", *common, "--port", str(relay_port), "--phone-number-id", pnid])
        for source in range(TOPICS - 1):
            child(f"relay-forward-{source}", [*base, "forward", *common, "--source", str(source)])
        child("relay-send", [*base, "send", *common, "--graph-url", sim_url, "--phone-number-id", pnid,
                             "--token", token])
        sim = child("relay-metasim", [sys.executable, "-m", "aerostic", "metasim", "--host", "127.0.0.1",
                                      "--port", str(sim_port)],
                    {"METASIM_CALLBACK_URL": f"http://127.0.0.1:{relay_port}/webhooks/meta",
                     "METASIM_APP_SECRET": SECRET, "METASIM_CALLBACK_CONCURRENCY": SIM_CALLBACK_CONCURRENCY})
        wait_until(lambda: (port_open(relay_port) and port_open(sim_port)) or not sim.alive(), timeout=120,
                   what="relay", interval=0.1)
        httpx.put(f"{sim_url}/_sim/webhooks", json={"enabled": False}).raise_for_status()
        httpx.post(f"{sim_url}/_sim/numbers", json={"phone_number_id": pnid, "waba_id": waba, "token": token,
                                                    "throughput": 1000}).raise_for_status()
        self.relay_sim = Sim(sim_url, pnid)
        return self.relay_sim

    def rest_relay(self, resting: bool) -> None:
        """Rest the relay's hops (their partitions paused: no fetch reaches the broker) or wake them
        (``bench.relay.Resting``)."""
        for child in self.relay:
            if child.name.startswith(("relay-forward", "relay-send")) and child.alive():
                os.kill(child.pid, signal.SIGUSR1 if resting else signal.SIGUSR2)

    def wake_relay(self, attempts: int = 3) -> None:
        """Wake the relay's hops and wait until a few questions went through all of them: a hop fetches again only
        after its current poll and librdkafka's own delay (the first question after a wake took 470 ms). A wake whose
        questions are not all answered is sent again (at most ``attempts`` times, then the step shows it)."""
        assert self.relay_sim is not None
        for attempt in range(1, attempts + 1):
            self.rest_relay(False)
            woken = asyncio.run(self.relay_sim.run(10, 0.5, 10.0))
            if woken.sent and woken.unanswered == 0 and woken.errors == 0:
                return
            print(f"  the relay's wake {attempt}: {woken.unanswered} of {len(woken.sent)} questions unanswered",
                  flush=True)

    def stop_relay(self) -> None:
        for child in reversed(self.relay):
            child.stop(grace=5)
        self.relay = []

    def stop(self) -> None:
        self.stop_relay()
        self.stack.stop()


LOAD = ("loadgen", "metasim", "relay-metasim")  # the load's side: reported apart from what carries it


def _only(used: dict[str, float], relay: dict[str, int]) -> dict[str, float]:
    """The relay's processes and the broker they share (the pipeline's idle processes left out)."""
    return {k: v for k, v in used.items() if k in relay or k in ("kafka", "loadgen")}


def step_cpu(before: dict[str, float], after: dict[str, float], questions: int, seconds: float,
             held: int) -> str:
    """One step's CPU: the broker's and the rest's (the load's side left out) per question, and the broker's share
    of its one thread over the step; ``held``: the questions the stack had carried before the step (the embedded
    broker lists every batch a partition holds on each fetch that finds records, so its cost grows with them)."""
    per_q = cpu_per_question(before, after, questions)
    broker = per_q.get("kafka", 0.0)
    rest = sum(v for k, v in per_q.items() if k not in LOAD and k != "kafka")
    busy = (after.get("kafka", 0.0) - before.get("kafka", 0.0)) / seconds if seconds else 0.0
    return (f"  cpu: broker {broker:.1f} ms/q ({busy:.0%} of its thread), the rest {rest:.1f} ms/q, "
            f"after {held} questions")


def relay_floor(before: dict[str, float], after: dict[str, float], questions: int, seconds: float,
                broker_idle_ms_s: float) -> dict[str, float]:
    """The bare relay's CPU ms per question between two readings ``seconds`` apart: its forwarders, and the broker
    less what it spends meanwhile on the pipeline's idle consumers (``broker_idle_ms_s``, measured at rest before
    the relay started); the relay's own idle fetches count, as the pipeline's do. The load's side is left out."""
    per_q = {k: v for k, v in cpu_per_question(before, after, questions).items() if k not in LOAD}
    if per_q:
        per_q["kafka"] = max(0.0, per_q.get("kafka", 0.0) - broker_idle_ms_s * seconds / questions)
    return per_q


def relay_cpu_per_question(sim: Sim, rate: int, seconds: float, drain_s: float, broker_idle_ms_s: float,
                           cpu: Callable[[], dict[str, float]]) -> float:
    """The relay carrying ``rate`` questions a second (the rate of ``cpu_ms_per_q``), its CPU a question in all
    (``relay_floor``): the transport's floor under the pipeline's figure, in the same run."""
    before, began = cpu(), time.monotonic()
    run = asyncio.run(sim.run(rate, seconds, drain_s))
    floor = relay_floor(before, cpu(), len(run.sent), time.monotonic() - began, broker_idle_ms_s)
    total = sum(floor.values())
    print(run.step().line("relay cpu"), flush=True)
    shares = " ".join(f"{k}={v:.1f}" for k, v in sorted(floor.items(), key=lambda kv: -kv[1]))
    print(f"relay at {rate}/s, ms/q (the broker less the pipeline's idle consumers): {shares}; all {total:.1f}",
          flush=True)
    return total


@dataclass
class Side:
    """One chain ``step_through`` steps: its simulator, its processes' CPU so far, and what it does around a step."""

    label: str
    sim: Sim
    cpu: Callable[[], dict[str, float]]
    wake: Callable[[], None] = lambda: None  # before each of its steps
    rest: Callable[[], None] = lambda: None  # after a step that passed
    done: Callable[[], None] = lambda: None  # after its failing step
    steps: list[Step] = field(default_factory=list)


QUIET_SLACK_MS_S = 100.0  # "back at rest": within this much CPU a second of the stack's rate at rest …
QUIET_LIMIT_S = 30.0  # … or after this long


def settle(stack: LocalStack, at_rest_ms_s: float, window_s: float = 0.5) -> float:
    """Wait until the stack (the load's side left out, read with psutil: no scrape) uses no more CPU over
    ``window_s`` than at rest plus ``QUIET_SLACK_MS_S``, at most ``QUIET_LIMIT_S``: what a step left behind (a failed
    step's backlog, the projector catching up) is not carried into the next step, the other chain's. Seconds
    waited."""
    pids = {name: child.pid for name, child in stack.children.items() if name not in LOAD}
    pids |= {name: service.child.pid for name, service in stack.services.items()}

    def used() -> float:
        return sum(_psutil_cpu(pid) for pid in pids.values())

    began = time.monotonic()
    with measuring():
        last, at = used(), began
        while True:
            time.sleep(window_s)  # a measuring window, not a wait for an event
            now, now_at = used(), time.monotonic()
            rate_ms_s = (now - last) * 1000 / (now_at - at)
            if rate_ms_s <= at_rest_ms_s + QUIET_SLACK_MS_S or now_at - began >= QUIET_LIMIT_S:
                return now_at - began
            last, at = now, now_at


def step_through(sides: Sequence[Side], rates: Sequence[int], seconds: float, drain_s: float,
                 deadline: float, quiet: Callable[[], float] | None = None) -> None:
    """Step each side through the same rates while its steps pass and the time budget lasts. A rate's steps run back
    to back and the first of them alternates (the first side first at the first rate, last at the second …), so two
    chains are compared over the same minutes of a machine whose speed drifts, and neither always runs in the wake of
    the other's step; with ``quiet`` (``settle``), each step waits for the stack to be back at rest first. Each step's
    line is followed by its CPU (``step_cpu``)."""
    for at, rate in enumerate(rates):
        turn = [side for side in (sides if at % 2 == 0 else sides[::-1]) if should_continue(side.steps)]
        if not turn:
            return
        for side in turn:
            waited = quiet() if quiet else 0.0
            if waited > 1.0:
                print(f"  (waited {waited:.1f}s for the stack to be back at rest)", flush=True)
            if time.monotonic() + seconds * 2 + drain_s > deadline:
                print(f"time budget reached before {rate}/s", flush=True)
                return
            side.wake()
            held, began = side.sim.customers, time.monotonic()
            before = side.cpu()
            step = asyncio.run(side.sim.run(rate, seconds, drain_s)).step()
            side.steps.append(step)
            print(step.line(side.label), flush=True)
            print(step_cpu(before, side.cpu(), step.sent, time.monotonic() - began, held), flush=True)
            (side.rest if step.passed else side.done)()


def main(rates: Sequence[int] = DEFAULT_RATES, seconds: float = 5.0, drain_s: float = 10.0,
         budget_s: float = 300.0, relay: bool = True, scale: dict[str, int] | None = None,
         idle_s: float = IDLE_S, pg_stats: bool = False, cpu_rate: int = CPU_RATE) -> int:
    """Warm up, CPU at rest and at ``cpu_rate`` (40/s), the relay's CPU at that rate, the relay's and the pipeline's
    steps in turn (``step_through``); one ``RESULT`` line."""
    began = time.monotonic()
    deadline = began + budget_s - 15  # the stop and the report
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)
    bench = E2E(scale, pg_stats)
    pipeline: list[Step] = []
    relay_steps: list[Step] = []
    relay_cpu_q = float("nan")  # the relay's CPU a question at cpu_rate
    cpu: dict[str, float] = {}
    try:
        sim = bench.start()
        asyncio.run(bench.tenant())
        warm = asyncio.run(sim.run(20, 2.0, 60.0))  # joins every consumer group and warms every cache
        print(f"warm-up: {len(warm.sent)} questions, lost={warm.unanswered + warm.errors} "
              f"({time.monotonic() - began:.0f}s since start)", flush=True)
        if pg_stats:  # from here on: rest, the CPU step, the relay's steps (no PostgreSQL) and the pipeline's
            asyncio.run(bench_pg_stats.reset(bench.stack.database_url))
        still, rested = cpu_seconds(bench.stack), time.monotonic()
        time.sleep(idle_s)  # nothing asked: what every process (the broker's idle fetches above all) costs at rest
        before = cpu_seconds(bench.stack)
        idle = cpu_per_second(still, before, time.monotonic() - rested)
        hops = hop_histograms(bench.stack)
        with measuring():
            commands = asyncio.run(redis_commands(bench.stack.redis_url))
        at_40 = asyncio.run(sim.run(cpu_rate, seconds, drain_s))
        cpu = cpu_per_question(before, cpu_seconds(bench.stack), len(at_40.sent))
        print(at_40.step().line("cpu"), flush=True)
        print(cpu_table(idle, cpu, cpu_rate), flush=True)
        with measuring():
            commands_after = asyncio.run(redis_commands(bench.stack.redis_url))
        print(per_unit(commands, commands_after, len(at_40.sent), "question"), flush=True)
        print(hop_table(hops, hop_histograms(bench.stack)), flush=True)
        sides = [Side("pipeline", sim, lambda: cpu_seconds(bench.stack))]
        if relay:
            relay_sim = bench.start_relay()
            asyncio.run(relay_sim.run(20, 2.0, 30.0))  # the relay's groups join
            relay_cpu = {child.name: child.pid for child in bench.relay}
            relay_cpu_q = relay_cpu_per_question(relay_sim, cpu_rate, seconds, drain_s, idle.get("kafka", 0.0),
                                                 lambda: _only(cpu_seconds(bench.stack, relay_cpu), relay_cpu))
            # Rested while the pipeline steps (its idle hops then send the broker no fetch), stopped after its failing
            # step (its backlog never competes with the pipeline's steps).
            bench.rest_relay(True)
            sides.insert(0, Side("relay", relay_sim, lambda: _only(cpu_seconds(bench.stack, relay_cpu), relay_cpu),
                                 wake=bench.wake_relay, rest=lambda: bench.rest_relay(True),
                                 done=bench.stop_relay))
            print("steps: the relay's and the pipeline's at each rate back to back, the first of them alternating",
                  flush=True)
        at_rest = sum(v for k, v in idle.items() if k not in LOAD)
        step_through(sides, rates, seconds, drain_s, deadline, lambda: settle(bench.stack, at_rest))
        pipeline, relay_steps = sides[-1].steps, sides[0].steps if relay else []
        if pg_stats:
            print(asyncio.run(bench_pg_stats.report(bench.stack.database_url)), flush=True)
    finally:
        bench.stop()
    sustained_rps, relay_rps = sustained(pipeline), sustained(relay_steps)
    held = next((s for s in pipeline if s.rate == sustained_rps), None)
    total_cpu = sum(v for k, v in cpu.items() if k not in LOAD)
    ratio = f"{sustained_rps / relay_rps:.3f}" if relay_rps else "nan"
    for ours, bare in zip(pipeline, relay_steps, strict=False):  # the same rates, in order
        print(f"at {ours.rate}/s: pipeline p99 {ours.p99_ms:.1f} ms, relay p99 {bare.p99_ms:.1f} ms (achieved "
              f"{ours.achieved_rate:.0f}/s and {bare.achieved_rate:.0f}/s)", flush=True)
    print(f"cpu_ms_per_q at {cpu_rate}/s: Aerostic and its services {total_cpu:.1f}; simulator "
          f"{cpu.get('metasim', 0.0):.1f} and load generator {cpu.get('loadgen', 0.0):.1f} apart; "
          f"wall {time.monotonic() - began:.0f}s", flush=True)
    print(f"RESULT e2e sustained_rps={sustained_rps} p99_ms={held.p99_ms if held else float('nan'):.1f} "
          f"cpu_ms_per_q={total_cpu:.1f} relay_cpu_ms_per_q={relay_cpu_q:.1f} relay_rps={relay_rps} "
          f"relay_ratio={ratio} "
          f"lost={sum(s.lost for s in pipeline if s.passed)} duplicated={sum(s.duplicated for s in pipeline)} "
          f"lost_at_first_failed_step={sum(s.lost for s in pipeline if not s.passed)}", flush=True)
    return 0
