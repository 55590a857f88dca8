"""``aerostic bench e2e``: a customer's question to the AI's answer, through the whole pipeline.

Starts the local stack (broker, PostgreSQL, Redis, ingress, stream workers, projector, AI worker,
dispatcher and the Meta simulator with its status webhooks off, so that only the question → answer
path is loaded), connects a tenant whose knowledge base the offline scorer answers, then has
simulated customers (each a new conversation) ask at a sustained rate. The latency of one message
runs from the moment the simulator is asked to send the customer's webhook to the moment the AI's
reply reaches the simulator's send endpoint (both on this machine's clock). A message without a
reply when the pipeline has drained is lost; a customer answered twice is duplicated. Each rate's line also
gives the CPU milliseconds per question of every Aerostic process, read from the process's own Prometheus
metrics (``process_cpu_seconds_total``) before and after the run (drain included).

Ends with one line:
``RESULT e2e p50_ms_200=… p99_ms_200=… p50_ms_500=… p99_ms_500=… lost=… duplicated=…``
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from db.tables import knowledge_entries, tenant_settings
from stack.launcher import LocalStack
from tenants.commands import attach_number, create_tenant
from tenants.config import bump_config_version
from vault.cipher import Vault, generate_key_spec

TARGET_P99_MS = 250.0
SECRET = "bench-e2e-app-secret"  # noqa: S105 - the simulator's local app secret
QUESTIONS = [
    ("How long does shipping take?", "Orders ship within 2 business days."),
    ("What is your return policy?", "Returns are free within 30 days."),
    ("Which payment methods do you accept?", "Cards, UPI and cash on delivery."),
    ("What are your opening hours?", "9am to 6pm, Monday to Saturday."),
    ("Do you ship internationally?", "Yes, to 40 countries."),
    ("How can I track my order?", "Use the tracking link in your confirmation email."),
]


@dataclass
class Run:
    """One sustained rate: when each customer's question left, and when answers arrived."""

    rate: int
    sent: dict[str, float] = field(default_factory=dict)
    answers: dict[str, list[float]] = field(default_factory=dict)
    send_errors: int = 0
    achieved_rate: float = 0.0

    def latencies_ms(self) -> list[float]:
        return sorted((times[0] - self.sent[wa_id]) * 1000 for wa_id, times in self.answers.items()
                      if wa_id in self.sent and times)

    @property
    def lost(self) -> int:
        return sum(1 for wa_id in self.sent if not self.answers.get(wa_id))

    @property
    def duplicated(self) -> int:
        return sum(1 for times in self.answers.values() if len(times) > 1)


def cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU seconds used so far by each Aerostic process, from its metrics (a process that does not answer: 0)."""
    used: dict[str, float] = {}
    for name in stack.metrics_ports:
        try:
            text = httpx.get(stack.metrics_url(name), timeout=10).text
        except httpx.HTTPError:
            used[name] = 0.0
            continue
        used[name] = sum(sample.value for family in text_string_to_metric_families(text)
                         for sample in family.samples if sample.name == "process_cpu_seconds_total")
    return used


def _cpu_per_question(before: dict[str, float], after: dict[str, float], questions: int) -> str:
    if not questions:
        return ""
    return " ".join(f"{name}={1000 * (after[name] - before.get(name, 0.0)) / questions:.1f}"
                    for name in sorted(after))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


class E2E:
    def __init__(self) -> None:
        self.stack = LocalStack(extra_env={"AEROSTIC_APP_SECRETS": SECRET})
        self.vault_keys = generate_key_spec("bench")
        self.pnid = str(uuid.uuid4().int)[:15]
        self.customers = 0

    def start(self) -> None:
        stack = self.stack
        stack.start_services()
        stack.prepare()
        stack.start_ingress()
        stack.start_streams()
        stack.start_projector()
        stack.start_ai()
        stack.start_metasim(app_secret=SECRET)
        httpx.put(f"{stack.metasim_url}/_sim/webhooks", json={"enabled": False}).raise_for_status()
        stack.start_dispatcher(vault_keys=self.vault_keys, concurrency="256", http_connections="4")

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

    async def run(self, rate: int, seconds: float, drain_s: float) -> Run:
        result = Run(rate)
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)  # httpcore slows down with more
        async with httpx.AsyncClient(base_url=self.stack.metasim_url, limits=limits, timeout=30) as sim:
            await sim.post("/_sim/reset")
            count = int(rate * seconds)
            began = time.perf_counter()
            tasks = []
            for i in range(count):
                due = began + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.customers += 1
                wa_id = f"91{self.customers:010d}"
                tasks.append(asyncio.create_task(self._ask(sim, result, wa_id, QUESTIONS[i % len(QUESTIONS)][0])))
            await asyncio.gather(*tasks)
            result.achieved_rate = count / (time.perf_counter() - began)
            deadline = time.monotonic() + drain_s
            while time.monotonic() < deadline:
                await self._collect(sim, result)
                if result.lost == 0:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # late duplicates would show up here
            await self._collect(sim, result)
        return result

    async def _ask(self, sim: httpx.AsyncClient, result: Run, wa_id: str, question: str) -> None:
        result.sent[wa_id] = time.time()
        answer = await sim.post("/_sim/customers/messages", json={
            "phone_number_id": self.pnid, "from": wa_id, "type": "text", "text": question})
        if answer.status_code != 200:
            result.send_errors += 1
            del result.sent[wa_id]

    async def _collect(self, sim: httpx.AsyncClient, result: Run) -> None:
        entries = (await sim.get("/_sim/requests", params={"phone_number_id": self.pnid})).json()["data"]
        answers: dict[str, list[float]] = {}
        for entry in entries:
            if entry["status"] == 200 and entry["recipient"]:
                answers.setdefault(entry["recipient"], []).append(entry["time"])
        result.answers = {k: sorted(v) for k, v in answers.items()}

    def stop(self) -> None:
        self.stack.stop()


def main(rates: tuple[int, ...] = (200, 500), seconds: float = 10.0, drain_s: float = 300.0,
         baseline_rate: int = 10) -> int:
    bench = E2E()
    runs: list[Run] = []
    try:
        bench.start()
        asyncio.run(bench.tenant())
        warm = asyncio.run(bench.run(20, 2.0, 60.0))  # joins every consumer group and warms every cache
        print(f"warm-up: {len(warm.sent)} questions, lost={warm.lost}", flush=True)
        base = asyncio.run(bench.run(baseline_rate, 5.0, 60.0))  # the pipeline's latency when it is not loaded
        base_p50, base_p99 = _percentile(base.latencies_ms(), 0.5), _percentile(base.latencies_ms(), 0.99)
        print(f"baseline {baseline_rate}/s: p50_ms={base_p50:.1f} p99_ms={base_p99:.1f} lost={base.lost}", flush=True)
        capacity = 0
        for step in (25, 50, 75, 100):  # the highest rate this machine sustains within the p99 target
            probe = asyncio.run(bench.run(step, 5.0, 60.0))
            probe_p99 = _percentile(probe.latencies_ms(), 0.99)
            print(f"step {step}/s: p99_ms={probe_p99:.1f} lost={probe.lost}", flush=True)
            if probe_p99 > TARGET_P99_MS or probe.lost:
                break
            capacity = step
        print(f"sustained within p99 <= {TARGET_P99_MS:.0f} ms: {capacity}/s", flush=True)
        for rate in rates:
            cpu_before = cpu_seconds(bench.stack)
            run = asyncio.run(bench.run(rate, seconds, drain_s))
            cpu = _cpu_per_question(cpu_before, cpu_seconds(bench.stack), len(run.sent))
            runs.append(run)
            latencies = run.latencies_ms()
            print(f"rate {rate}/s (achieved {run.achieved_rate:.0f}/s): {len(run.sent)} questions, "
                  f"answered {len(latencies)}, p50_ms={_percentile(latencies, 0.5):.1f} "
                  f"p99_ms={_percentile(latencies, 0.99):.1f} max_ms={max(latencies, default=float('nan')):.1f} "
                  f"mean_ms={statistics.fmean(latencies) if latencies else float('nan'):.1f} lost={run.lost} "
                  f"duplicated={run.duplicated} send_errors={run.send_errors} "
                  f"p99_vs_baseline={_percentile(latencies, 0.99) / base_p99:.1f}x", flush=True)
            print(f"  cpu_ms per question (metrics): {cpu}", flush=True)
    finally:
        bench.stop()
    figures = " ".join(f"p50_ms_{r.rate}={_percentile(r.latencies_ms(), 0.5):.1f} "
                       f"p99_ms_{r.rate}={_percentile(r.latencies_ms(), 0.99):.1f}" for r in runs)
    print(f"RESULT e2e {figures} lost={sum(r.lost for r in runs)} duplicated={sum(r.duplicated for r in runs)}",
          flush=True)
    return 0
