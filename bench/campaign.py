"""``aerostic bench campaign``: one number at the 1,000 msg/s tier sends a template campaign to N contacts while a
customer conversation (questions the AI answers) runs beside it.

Starts the whole local stack (status webhooks off, as in ``bench e2e``: the send path is measured, not the
status path), a tenant whose number has 1,000 msg/s and an approved marketing template, N contacts
tagged ``bench``, and another tenant's history of N sent messages with their statuses, analysed (``history``).
Measures the conversation's reply latency idle, then launches a campaign to the segment ``tags_all: [bench]``
through the API and asks again while it runs. ``wall_s`` runs from the launch request
to the simulator's acceptance of the last campaign message (read from its request log once the campaign's
view, read once a second as the console does, shows nothing queued); ``ideal_s`` = N / 1,000; ``duplicated`` counts
contacts that received the campaign more than once. One line:
``RESULT campaign contacts=… wall_s=… ideal_s=… ratio=… duplicated=… interactive_p99_idle_ms=…
interactive_p99_campaign_ms=… cpu_ms_campaigns=… cpu_ms_dispatcher=… cpu_ms_all=… cpu_ms_sim=…``: the last four
are the CPU milliseconds per contact that the campaign worker, the dispatcher, every process of Aerostic's (broker
and databases included) and, apart, the simulator standing in for Meta spent from the launch to the end.
``--pg-stats`` also prints PostgreSQL's costliest statements of the campaign (``bench.pg_stats``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench import pg_stats
from bench.e2e import QUESTIONS, SECRET, cpu_seconds
from bench.redis_stats import per_unit, redis_commands
from bench.steps import percentile as _percentile
from broker.producer import AsyncProducer
from config.settings import CoreSettings
from db.tables import knowledge_entries, tenant_settings
from stack.launcher import LocalStack
from templates.registry import template_id
from tenants.api_keys import create_key_for
from tenants.commands import attach_number, create_tenant
from tenants.config import bump_config_version
from vault.cipher import Vault, generate_key_spec

RATE = 1000
TEMPLATE = "bench_offer"
CONTACT_PREFIX = "9198"  # the campaign's contacts are CONTACT_PREFIX + 8 digits; the interactive probe's are not
# ``history``'s messages: g = 1 … :n, one a second from 40 days ago (at), read; their statuses.
_HISTORY = (" FROM generate_series(1, CAST(:n AS integer)) g, "
            "LATERAL (SELECT now() - interval '40 days' + g * interval '1 second' AS at) t")
_HISTORY_MESSAGES = text(
    "INSERT INTO messages (tenant_id, message_id, idempotency_key, wamid, conversation_key, direction, type, text, "
    "sent_at, status, status_at, created_at, requested_by) "
    "SELECT CAST(:t AS uuid), 'hist-' || g, 'hist-' || g, 'wamid.HIST' || g, 'hist:' || (g % 5000), 'outbound', "
    "'text', 'Your order has shipped', at, 'read', at, at, 'api_key:history'" + _HISTORY)
_HISTORY_STATUSES = text(
    "INSERT INTO message_statuses (tenant_id, wamid, status, status_at, applied, payload) "
    "SELECT CAST(:t AS uuid), 'wamid.HIST' || g, s, at, true, '{}'::jsonb" + _HISTORY
    + ", unnest(ARRAY['sent', 'delivered', 'read']) s")
COMPONENTS = [{"type": "BODY", "text": "Hello {{1}}, our offer is on", "example": {"body_text": [["Ann"]]}}]


class CampaignBench:
    def __init__(self, pg_stats: bool = False) -> None:
        self.stack = LocalStack(extra_env={"AEROSTIC_APP_SECRETS": SECRET}, pg_statements=pg_stats)
        self.pg_stats = pg_stats
        self.vault_keys = generate_key_spec("bench")
        self.pnid = str(uuid.uuid4().int)[:15]
        self.waba = str(uuid.uuid4().int)[:15]
        self.api_key = ""
        self.customers = 0
        self.cpu_before: dict[str, float] = {}
        self.cpu_after: dict[str, float] = {}
        self.redis_before: dict[str, int] = {}
        self.redis_after: dict[str, int] = {}

    def start(self) -> None:
        stack = self.stack
        stack.start_services()
        stack.prepare()
        stack.start_ingress()
        stack.start_streams()
        stack.start_campaigns()
        stack.start_projector()
        stack.start_ai()
        stack.start_deliverer()  # tenants' webhooks: none registered, yet it reads every event
        stack.start_metasim(app_secret=SECRET)
        httpx.put(f"{stack.metasim_url}/_sim/webhooks", json={"enabled": False}).raise_for_status()
        stack.start_dispatcher(vault_keys=self.vault_keys)  # its defaults: 512 workers, 512 connections

    async def tenant(self, contacts: int) -> None:
        stack = self.stack
        settings = CoreSettings(environment=stack.environment, kafka_bootstrap_servers=stack.kafka,
                                database_url=stack.database_url, redis_url=stack.redis_url)
        tenant_id = await create_tenant(settings, "bench campaign")
        token = uuid.uuid4().hex
        async with AsyncProducer(settings.kafka_bootstrap_servers) as producer:
            await attach_number(settings, producer, tenant_id=tenant_id, phone_number_id=self.pnid, waba_id=self.waba,
                                throughput_mps=RATE, token=token, vault=Vault.from_spec(self.vault_keys))
        async with httpx.AsyncClient(base_url=stack.metasim_url) as sim:
            (await sim.post("/_sim/numbers", json={"phone_number_id": self.pnid, "waba_id": self.waba,
                                                   "token": token, "throughput": RATE})).raise_for_status()
            (await sim.post("/_sim/templates", json={"waba_id": self.waba, "name": TEMPLATE, "language": "en",
                                                     "status": "APPROVED", "category": "MARKETING",
                                                     "parameters": {"body": 1}})).raise_for_status()
        _, self.api_key = await create_key_for(settings, tenant_id=tenant_id, name="bench")
        engine = create_async_engine(stack.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(tenant_settings.insert().values(tenant_id=tenant_id, ai_provider="offline",
                                                                   ai_threshold=0.7))
                await conn.execute(knowledge_entries.insert(), [
                    {"id": str(uuid.uuid4()), "tenant_id": tenant_id, "question": q, "answer": a, "keywords": []}
                    for q, a in QUESTIONS])
                await conn.execute(text(
                    "INSERT INTO message_templates (id, tenant_id, waba_id, name, language, category, status, "
                    "parameter_format, components, status_at) VALUES (:id, :t, :w, :n, 'en', 'MARKETING', "
                    "'APPROVED', 'positional', CAST(:c AS jsonb), now())"),
                    {"id": template_id(tenant_id, self.waba, TEMPLATE, "en"), "t": tenant_id, "w": self.waba,
                     "n": TEMPLATE, "c": json.dumps(COMPONENTS)})
                for at in range(0, contacts, 10_000):
                    await conn.execute(text(
                        "INSERT INTO contacts (tenant_id, wa_id, profile_name, tags, attributes) "
                        "SELECT CAST(:t AS uuid), CAST(:prefix AS text) || lpad(g::text, 8, '0'), 'Customer ' || g, "
                        "'[\"bench\"]'::jsonb, '{}'::jsonb "
                        "FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) g"),
                        {"t": tenant_id, "prefix": CONTACT_PREFIX, "a": at, "b": min(contacts, at + 10_000) - 1})
            await self.history(settings, engine, contacts)
        finally:
            await engine.dispose()
        redis = Redis.from_url(stack.redis_url)
        try:
            await bump_config_version(redis, tenant_id)
        finally:
            await redis.aclose()

    async def history(self, settings: CoreSettings, engine: AsyncEngine, messages: int) -> None:
        """Another tenant's past: ``messages`` sent messages (40 days ago) with their statuses, analysed.

        A deployment's tables hold a history and statistics. On empty ones, the projector's prepared batched
        reads keep the generic plans of an empty table (a scan of the whole table per call) until autovacuum
        analyses them, about a minute later: longer than the campaign."""
        tenant_id = await create_tenant(settings, "bench history")
        async with engine.begin() as conn:
            await conn.execute(_HISTORY_MESSAGES, {"t": tenant_id, "n": messages})
            await conn.execute(_HISTORY_STATUSES, {"t": tenant_id, "n": messages})
            await conn.execute(text("ANALYZE messages, message_statuses"))

    async def conversation(self, sim: httpx.AsyncClient, questions: int, rate: float) -> list[float]:
        """Ask ``questions`` at ``rate``/s, each from a new customer; the latencies of their answers (ms)."""
        asked: dict[str, float] = {}
        for i in range(questions):
            self.customers += 1
            wa_id = f"91{self.customers:010d}"
            asked[wa_id] = time.time()
            await sim.post("/_sim/customers/messages", json={"phone_number_id": self.pnid, "from": wa_id,
                                                             "type": "text", "text": QUESTIONS[i % len(QUESTIONS)][0]})
            await asyncio.sleep(1 / rate)
        deadline = time.monotonic() + 60
        answers: dict[str, float] = {}
        while time.monotonic() < deadline and len(answers) < len(asked):
            await asyncio.sleep(0.5)
            entries = (await sim.get("/_sim/requests", params={"phone_number_id": self.pnid,
                                                               "since": min(asked.values())})).json()["data"]
            for entry in entries:
                if entry["status"] == 200 and entry["recipient"] in asked and entry["recipient"] not in answers:
                    answers[entry["recipient"]] = entry["time"]
        return sorted((answers[w] - asked[w]) * 1000 for w in answers)

    async def campaign(self, contacts: int) -> tuple[float, int, list[float]]:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        auth = {"Authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(base_url=self.stack.metasim_url, limits=limits, timeout=60) as sim, \
                httpx.AsyncClient(base_url=self.stack.ingress_url, timeout=60) as api:
            created = await api.post("/v1/campaigns", headers=auth, json={
                "name": "bench", "template": {"name": TEMPLATE, "language": "en"},
                "audience": {"kind": "segment", "filter": {"tags_all": ["bench"]}},
                "variables": {"body.1": {"source": "profile_name", "default": "there"}}})
            created.raise_for_status()
            campaign_id = created.json()["id"]
            before = (await sim.get("/_sim/counts")).json()["accepted"]
            if self.pg_stats:
                await pg_stats.reset(self.stack.database_url)
            self.redis_before = await redis_commands(self.stack.redis_url)
            self.cpu_before = cpu_seconds(self.stack)
            began, launched_at = time.monotonic(), time.time()
            (await api.post(f"/v1/campaigns/{campaign_id}/launch", headers=auth)).raise_for_status()
            during = asyncio.create_task(self.conversation(sim, 40, 2.0))
            wall = float("nan")
            deadline = began + 30 * 60
            while time.monotonic() < deadline:  # read once a second, as the console does on each progress event
                view = (await api.get(f"/v1/campaigns/{campaign_id}", headers=auth)).json()
                if view["funnel"]["queued"] == 0 and view["expanded"]:
                    wall = await self.last_accepted(sim, since=time.time() - 10) - launched_at
                    print(f"campaign: last message accepted {wall:.1f} s after the launch, the view showed it done "
                          f"after {time.monotonic() - began:.1f} s", flush=True)
                    print(await self.timeline(sim, launched_at), flush=True)
                    break
                await asyncio.sleep(1.0)
            self.cpu_after = cpu_seconds(self.stack)
            self.redis_after = await redis_commands(self.stack.redis_url)
            if self.pg_stats:
                print(await pg_stats.report(self.stack.database_url), flush=True)
            latencies = await during
            counts = (await sim.get("/_sim/counts")).json()
            duplicated = sum(1 for wa_id, n in counts["by_recipient"].items()
                             if wa_id.startswith(CONTACT_PREFIX) and n > 1)
            print(f"campaign: accepted {counts['accepted'] - before} sends (incl. replies), "
                  f"funnel {view['funnel']['submitted']} submitted", flush=True)
            return wall, duplicated, latencies

    async def last_accepted(self, sim: httpx.AsyncClient, since: float) -> float:
        """When the simulator accepted the campaign's last message (to a number starting with ``CONTACT_PREFIX``)."""
        entries = (await sim.get("/_sim/requests", params={"phone_number_id": self.pnid, "since": since})).json()
        times = [e["time"] for e in entries["data"]
                 if e["status"] == 200 and str(e["recipient"]).startswith(CONTACT_PREFIX)]
        return max(times) if times else float("nan")

    async def timeline(self, sim: httpx.AsyncClient, launched_at: float) -> str:
        """When the campaign's first message was accepted, and its rate between 10 % and 90 % of its messages:
        what start-up costs against what the steady rate costs."""
        entries = (await sim.get("/_sim/requests", params={"phone_number_id": self.pnid, "since": launched_at})).json()
        times = sorted(e["time"] for e in entries["data"]
                       if e["status"] == 200 and str(e["recipient"]).startswith(CONTACT_PREFIX))
        if len(times) < 10:
            return f"campaign: {len(times)} messages in the simulator's log"
        low, high = times[len(times) // 10], times[len(times) * 9 // 10]
        steady = (len(times) * 8 // 10) / (high - low) if high > low else float("nan")
        per_second = Counter(int(t - launched_at) for t in times)
        seconds = " ".join(str(per_second[s]) for s in range(max(per_second) + 1))
        return (f"campaign: first message {times[0] - launched_at:.2f} s after the launch, "
                f"{steady:.0f} messages/s from 10 % to 90 % of them ({len(times)} in the simulator's log)\n"
                f"campaign: messages in each second after the launch: {seconds}")

    def stop(self) -> None:
        self.stack.stop()


def main(contacts: int = 20_000, pg_stats: bool = False) -> int:
    bench = CampaignBench(pg_stats)
    try:
        bench.start()
        asyncio.run(bench.tenant(contacts))
        print(f"stack up; {contacts} contacts", flush=True)

        async def idle() -> list[float]:
            async with httpx.AsyncClient(base_url=bench.stack.metasim_url, timeout=60) as sim:
                await bench.conversation(sim, 10, 2.0)  # warm-up: joins every group, fills every cache
                return await bench.conversation(sim, 40, 2.0)

        idle_ms = asyncio.run(idle())
        wall, duplicated, during_ms = asyncio.run(bench.campaign(contacts))
    finally:
        bench.stop()
    ideal = contacts / RATE
    cpu = {name: (bench.cpu_after[name] - bench.cpu_before.get(name, 0.0)) * 1000 / contacts
           for name in bench.cpu_after if name != "loadgen"}  # the bench's own client is not the platform's
    print("CPU ms per contact, per process: " + ", ".join(f"{name} {value:.2f}" for name, value in
                                                        sorted(cpu.items(), key=lambda kv: -kv[1])), flush=True)
    print(per_unit(bench.redis_before, bench.redis_after, contacts, "contact"), flush=True)
    print(f"RESULT campaign contacts={contacts} wall_s={wall:.1f} ideal_s={ideal:.1f} ratio={wall / ideal:.2f} "
          f"duplicated={duplicated} interactive_p99_idle_ms={_percentile(idle_ms, 0.99):.0f} "
          f"interactive_p99_campaign_ms={_percentile(during_ms, 0.99):.0f} "
          f"cpu_ms_campaigns={cpu.get('campaigns', 0.0):.2f} cpu_ms_dispatcher={cpu.get('dispatcher', 0.0):.2f} "
          f"cpu_ms_all={sum(v for name, v in cpu.items() if name != 'metasim'):.2f} "
          f"cpu_ms_sim={cpu.get('metasim', 0.0):.2f}", flush=True)
    return 0
