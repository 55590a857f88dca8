"""Chaos: under mixed load each process is SIGKILLed and restarted in turn, Redis restarts with and without its
data, PostgreSQL restarts; after each fault nothing is lost, nothing reaches Meta twice unless counted as
ambiguous, no status goes back, every conversation is consistent, the poison records (and only they) are in the
dead-letter topics, and the pipeline is back to its normal latency within a bound.

The module runs a stack of its own, so the session's stack is not disturbed. Each round: customers write
through the simulator (a webhook the ingress did not answer 200 is posted again with the same wamid, as Meta
retries), the tenant sends through the API with idempotency keys (each posted once to three times, some again in
the next round), resolves conversations (the next message reopens them and the AI hands them to a person), a
keyword rule answers, a rule stored before rules were checked cannot be evaluated, and poison records are appended
to ``wa.webhooks.raw`` (not JSON) and ``conversations.commands`` (an unknown shape); the status webhooks come
back duplicated and reordered. The fault strikes once the first half of the round was accepted; probes (a new
customer writes, the AI is asked and hands off, the tenant answers, the answer is read) measure when the pipeline
is back to normal latency. The figures (lost, duplicated, ambiguous, recovery per fault) are printed by the last
test and written after every round to ``chaos-figures.json`` under the stack's root."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.exceptions import RedisError
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.dead_letters import read_letters
from broker.producer import AsyncProducer
from broker.reading import read_all
from config import redis_keys
from config.settings import CoreSettings
from db.redis_client import connect_redis
from db.tables import automation_rules
from metasim import payloads
from schemas.catalogue import (
    CONVERSATIONS_COMMANDS,
    CONVERSATIONS_GROUP,
    GROUPS,
    OUTBOUND_RESULTS,
    ROUTER_GROUP,
    WEBHOOKS_RAW,
)
from schemas.outbound import OutboundResult
from schemas.status_rank import status_wins
from stack.launcher import LocalStack
from tenants.config import bump_config_version
from tests.integration.helpers import (
    AI_TIMEOUT_S,
    SECRET,
    Business,
    fresh_id,
    new_business,
    start_dispatcher,
    started_stack,
)

pytestmark = pytest.mark.chaos

FAULTS = ("ingress", "streams", "projector", "dispatcher", "ai", "redis-kept", "redis-lost", "postgres")
RESTART = {"streams": LocalStack.start_streams, "projector": LocalStack.start_projector, "dispatcher": start_dispatcher,
           "ai": lambda stack: stack.start_ai(timeout_s=AI_TIMEOUT_S)}
STATES = frozenset({"bot", "queued", "agent", "closed"})
CUSTOMERS = 5
KEYWORD = "price"
RECOVERY_BOUND_S = 60.0
SETTLE_S = 90.0
RETRY_S = 90.0  # how long a client retries one request (a reservation left by a killed request stands 30 s)
PROBE_EVERY_S = 1.0
PROBES_AT_ONCE = 4  # probes waiting on a stalled pipeline at one time (each polls PostgreSQL)
WIRE_MS = 1000  # how long Meta takes to answer a send while the dispatcher is killed: calls are on the wire
MAX_PROBES = 40
SHOWN = 10  # items of each violation quoted in a failure
TRANSIENT = (OSError, DBAPIError, RedisError, httpx.TransportError)


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[LocalStack]:
    local = started_stack(seed="11", root=Path(tempfile.mkdtemp(prefix="aerostic-chaos-")), model=False)
    try:
        yield local
    finally:
        local.stop()  # removes the data: the logs and the figures stay


async def until(probe: Callable[[], Awaitable[Any]], *, timeout: float, what: str,  # noqa: ASYNC109
                interval: float = 0.2) -> Any:
    """Poll ``probe`` until it returns a truthy value; a service that is down for a moment counts as "not yet"."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except TRANSIENT as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


@dataclass
class Chaos:
    """The load, what it generated, and what the last round left (to compare the next one with)."""

    stack: LocalStack
    settings: CoreSettings
    db: AsyncEngine
    api: httpx.AsyncClient
    sim: httpx.AsyncClient
    producer: AsyncProducer
    business: Business
    rule_id: str = ""
    customers: list[str] = field(default_factory=list)
    inbound: dict[str, str] = field(default_factory=dict)  # wamid → customer: every message the simulator made
    priced: set[str] = field(default_factory=set)  # wamids of the messages the keyword rule answers
    sends: dict[str, str] = field(default_factory=dict)  # client idempotency key → message id
    targets: dict[str, str] = field(default_factory=dict)  # client idempotency key → customer
    poison: dict[str, list[bytes]] = field(default_factory=lambda: {group: [] for group in GROUPS})
    refused: int = 0  # customers' webhooks not answered 200 (posted again)
    normal_s: float = 0.0
    versions: dict[str, int] = field(default_factory=dict)  # projected conversation versions after the last round
    cached: dict[str, int] = field(default_factory=dict)  # the processor's versions (Redis) after the last round
    statuses: dict[str, str] = field(default_factory=dict)  # message id → status after the last round
    previous: list[str] = field(default_factory=list)  # keys of the last round, sent again in the next
    figures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tenant(self) -> str:
        return self.business.tenant_id

    def key(self, wa_id: str) -> str:
        return self.business.conversation(wa_id)

    def markers(self) -> set[str]:
        """Every downstream idempotency key the load asked for: the API's sends and the keyword rule's replies."""
        return ({f"{self.tenant}:{key}" for key in self.sends}
                | {f"{wamid}:{self.rule_id}:0" for wamid in self.priced})

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.db.connect() as conn:
            return list((await conn.execute(text(sql), {"t": self.tenant, **params})).all())

    # --- the load ---------------------------------------------------------------------------------

    async def request(self, method: str, url: str, *, retry_404: bool = False, **kwargs: Any) -> httpx.Response:
        """One client call, retried (same body) while the service is down, busy or still catching up."""
        retry = {409, 429} | ({404} if retry_404 else set())
        deadline = time.monotonic() + RETRY_S
        while True:
            try:
                response = await self.api.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if response.status_code in (200, 202):
                    return response
                if response.status_code < 500 and response.status_code not in retry:
                    raise AssertionError(f"{method} {url}: {response.status_code} {response.text}")
                last = f"{response.status_code} {response.text[:200]}"
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {url} not accepted within {RETRY_S:.0f}s (last: {last})")
            await asyncio.sleep(0.2)  # the client's back-off

    async def write(self, wa_id: str, body: str) -> str:
        """A customer writes through the simulator; what the ingress did not take is posted again, as Meta does."""
        answer = await self.sim.post("/_sim/customers/messages", json={
            "phone_number_id": self.business.phone_number_id, "from": wa_id, "text": body})
        assert answer.status_code == 200, answer.text
        wamid = str(answer.json()["wamid"])
        self.inbound[wamid] = wa_id
        if body == KEYWORD:
            self.priced.add(wamid)
        if not answer.json()["delivered"]:
            self.refused += 1
            raw, headers = payloads.signed(payloads.customer_text(
                self.business.phone_number_id, self.business.waba_id, wa_id, body, wamid=wamid), SECRET)
            await self.request("POST", "/webhooks/meta", content=raw, headers=headers)
        return wamid

    async def send(self, key: str, times: int, wa_id: str | None = None) -> None:
        """The tenant sends with an idempotency key, ``times`` times (a client retrying); one message id."""
        to = self.targets.setdefault(key, wa_id or "")
        body = {"to": to, "type": "text", "text": {"body": f"about {key}"}, "idempotency_key": key}
        for _ in range(times):
            answer = (await self.request("POST", "/v1/messages", json=body, headers=self.business.auth)).json()
            first = self.sends.setdefault(key, answer["id"])
            assert answer["id"] == first, f"key {key} answered {answer['id']} after {first}"

    async def resolve(self, wa_id: str) -> None:
        await self.request("POST", f"/v1/conversations/{self.key(wa_id)}/resolve", retry_404=True,
                           headers=self.business.auth)

    async def append_poison(self, label: str) -> None:
        """A record that is not a webhook at all, and a command of a shape nobody knows."""
        raw = f"chaos poison ({label}): not JSON {{".encode()
        key = self.key(self.customers[0])
        command = orjson.dumps({"kind": "teleport", "event_id": f"poison-{label}", "tenant_id": self.tenant,
                                "conversation_key": key, "destination": "the moon"})
        await self.producer.send(WEBHOOKS_RAW.name, raw, b"poison")
        await self.producer.send(CONVERSATIONS_COMMANDS.name, command, key.encode())
        self.poison[ROUTER_GROUP].append(raw)
        self.poison[CONVERSATIONS_GROUP].append(command)

    # --- probes -----------------------------------------------------------------------------------

    async def probe(self) -> float:
        """A new customer's message is stored, the AI hands it to a person, the tenant's answer is read: seconds."""
        started = time.monotonic()
        wa_id = fresh_id()
        wamid = await self.write(wa_id, "hello, is anyone there?")
        bound = RECOVERY_BOUND_S * 2
        await until(lambda: self.rows("SELECT 1 FROM messages WHERE tenant_id = :t AND wamid = :w", w=wamid),
                    timeout=bound, what=f"probe {wamid} stored", interval=0.2)
        key = f"probe-{uuid.uuid4().hex[:12]}"
        await self.send(key, 1, wa_id)
        await until(lambda: self.rows("SELECT 1 FROM messages WHERE tenant_id = :t AND message_id = :m "
                                      "AND status = 'read'", m=self.sends[key]),
                    timeout=bound, what=f"probe answer {key} read", interval=0.2)
        await until(lambda: self.rows("SELECT 1 FROM conversations WHERE tenant_id = :t AND key = :k "
                                      "AND state = 'queued'", k=self.key(wa_id)),
                    timeout=bound, what=f"probe {wa_id} handed to a person", interval=0.2)
        return time.monotonic() - started

    async def recovery(self, fault_at: float) -> float:
        """Seconds from the fault until a probe (one started every second meanwhile) ran at normal latency."""
        recovered: list[float] = []
        done = asyncio.Event()
        slots = asyncio.Semaphore(PROBES_AT_ONCE)

        async def one() -> None:
            async with slots:
                latency = await self.probe()
            if latency <= self.normal_s and not recovered:
                recovered.append(time.monotonic())
                done.set()

        probes: list[asyncio.Task[None]] = []
        while not done.is_set() and len(probes) < MAX_PROBES and time.monotonic() - fault_at < 2 * RECOVERY_BOUND_S:
            await slots.acquire()  # a probe starts when fewer than PROBES_AT_ONCE are waiting
            slots.release()
            probes.append(asyncio.create_task(one()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_EVERY_S):
                    await done.wait()
        await asyncio.gather(*probes)
        assert recovered, f"no probe at normal latency ({self.normal_s:.1f}s) in {len(probes)} probes"
        return recovered[0] - fault_at

    # --- faults -----------------------------------------------------------------------------------

    async def inflict(self, fault: str) -> float:
        """Kill (or restart) ``fault`` and start it again; seconds until it was started."""
        started = time.monotonic()
        stack = self.stack
        if fault == "ingress":
            port = int(stack.ingress_url.rsplit(":", 1)[1])
            stack.children["ingress"].kill()
            await asyncio.to_thread(stack.start_ingress, port)
        elif fault in RESTART:
            stack.children[fault].kill()
            RESTART[fault](stack)
        elif fault.startswith("redis"):
            await asyncio.to_thread(stack.restart_redis, keep_data=fault == "redis-kept")
        else:
            await asyncio.to_thread(stack.restart_postgres)
        return time.monotonic() - started

    # --- what the stack holds ---------------------------------------------------------------------

    def _results(self) -> list[OutboundResult]:
        found = (OutboundResult.decode(msg.value() or b"") for msg in read_all(self.settings, OUTBOUND_RESULTS.name))
        return [result for result in found if result.tenant_id == self.tenant]

    async def results(self) -> list[OutboundResult]:
        return await asyncio.to_thread(self._results)

    async def outbound(self) -> dict[str, Any]:
        """The tenant's outbound messages by downstream idempotency key."""
        found = await self.rows("SELECT idempotency_key, message_id, status, wamid FROM messages "
                                "WHERE tenant_id = :t AND direction = 'outbound' AND message_id IS NOT NULL")
        return {row.idempotency_key: row for row in found}

    async def conversations(self) -> tuple[dict[str, tuple[str, int]], dict[str, tuple[str, int]]]:
        """(state, version) of each conversation as projected, and as the processor holds it in Redis."""
        projected = {row.key: (row.state, row.version) for row in await self.rows(
            "SELECT key, state, version FROM conversations WHERE tenant_id = :t")}
        redis = connect_redis(self.stack.redis_url)
        try:
            keys = sorted(projected)
            values = await redis.mget([redis_keys.conversation(k) for k in keys]) if keys else []
        finally:
            await redis.aclose()
        cached = {}
        for key, value in zip(keys, values, strict=True):
            if value:
                state = orjson.loads(value)
                cached[key] = (str(state.get("state")), int(state.get("version", 0)))
        return projected, cached

    @staticmethod
    def inconsistent(projected: dict[str, tuple[str, int]], cached: dict[str, tuple[str, int]]) -> list[str]:
        """Conversations in an unknown state, or whose projection is not the processor's state (or is ahead of it)."""
        found = [f"{key}: unknown state {state!r}" for key, (state, _) in projected.items() if state not in STATES]
        for key, (state, version) in projected.items():
            held = cached.get(key)
            if held is not None and (held[0] != state or held[1] < version):
                found.append(f"{key}: processor holds {held}, projection ({state!r}, {version})")
        return found

    async def quiet(self) -> bool:
        """Nothing left in flight: statuses posted, messages stored, sends read, conversations projected."""
        if (await self.sim.get("/_sim/health")).json()["pending_webhooks"]:
            return False
        stored = {row.wamid for row in await self.rows(
            "SELECT wamid FROM messages WHERE tenant_id = :t AND direction = 'inbound'")}
        if not set(self.inbound) <= stored:
            return False
        outbound = await self.outbound()
        if any(getattr(outbound.get(m), "status", None) != "read" for m in self.markers()):
            return False
        return not self.inconsistent(*await self.conversations())

    # --- a round ----------------------------------------------------------------------------------

    async def round(self, fault: str) -> tuple[list[str], dict[str, Any]]:
        refused_before = self.refused
        ambiguous_before = {r.idempotency_key for r in await self.results() if r.ambiguous}
        keys = [f"{fault}-{i}-{uuid.uuid4().hex[:8]}" for i in range(8)]
        customers = self.customers
        slow = f"/_sim/faults/{self.business.phone_number_id}"
        if fault == "dispatcher":  # Meta answers slowly, so the kill finds calls on the wire
            assert (await self.sim.post(slow, json={"latency_ms": WIRE_MS})).status_code == 200
        await asyncio.gather(  # the first half, accepted before the fault
            *(self.write(c, KEYWORD if i == 0 else f"question {i} before {fault}") for i, c in enumerate(customers)),
            *(self.send(k, 1 + i % 2, customers[i % CUSTOMERS]) for i, k in enumerate(keys[:4])),
            self.resolve(customers[1]), self.resolve(customers[2]), self.append_poison(fault))
        asked, fault_at, fault_time = self.markers(), time.monotonic(), datetime.now(UTC)
        restart = asyncio.create_task(self.inflict(fault))
        recovery = asyncio.create_task(self.recovery(fault_at))
        await asyncio.gather(  # the second half, during the fault: new work, and clients retrying old work
            *(self.write(c, f"question after {fault}") for c in customers),
            *(self.send(k, 2, customers[i % CUSTOMERS]) for i, k in enumerate(keys[4:])),
            *(self.send(k, 1) for k in keys[:4] + self.previous))
        restarted_s = await restart
        await self.sim.delete(slow)
        recovery_s = await recovery
        with contextlib.suppress(AssertionError):  # what is still missing then is reported below
            await until(self.quiet, timeout=SETTLE_S, what="the load to settle", interval=0.3)
        self.previous = keys[:2]
        return await self.check(fault, ambiguous_before=ambiguous_before, asked=asked, fault_time=fault_time,
                                recovery_s=recovery_s, restarted_s=restarted_s,
                                refused=self.refused - refused_before)

    async def check(self, fault: str, *, ambiguous_before: set[str], asked: set[str], fault_time: datetime,
                    recovery_s: float, restarted_s: float, refused: int) -> tuple[list[str], dict[str, Any]]:
        problems: list[str] = []

        def problem(what: str, items: Any) -> None:
            items = sorted(items)
            if items:
                problems.append(f"{what} ({len(items)}): {items[:SHOWN]}")

        stored = Counter(row.wamid for row in await self.rows(
            "SELECT wamid FROM messages WHERE tenant_id = :t AND direction = 'inbound'"))
        problem("customer messages lost", set(self.inbound) - set(stored))
        problem("customer messages stored twice", {w for w, n in stored.items() if n > 1})

        log = (await self.sim.get("/_sim/requests", params={"phone_number_id": self.business.phone_number_id})).json()
        accepted = [entry for entry in log["data"] if entry["status"] == 200 and entry["biz_opaque_callback_data"]]
        calls = Counter(entry["biz_opaque_callback_data"] for entry in accepted)
        results = await self.results()
        ambiguous = {r.idempotency_key for r in results if r.ambiguous}
        markers = self.markers()
        duplicated = {m for m, n in calls.items() if n > 1} - ambiguous
        problem("sent twice without being counted as ambiguous", duplicated)
        problem("sent more than twice", {m for m, n in calls.items() if n > 2})
        problem("sent without being asked", set(calls) - markers)
        problem("asked and never sent", markers - set(calls))
        new_ambiguous = ambiguous - ambiguous_before
        # Asked for before the fault and not answered by then: the only sends whose outcome a fault can blur.
        in_flight = len(asked - {r.idempotency_key for r in results if r.completed_at < fault_time})
        if len(new_ambiguous) > in_flight:
            problems.append(f"{len(new_ambiguous)} ambiguous outcomes, {in_flight} sends in flight at the fault")

        outbound = await self.outbound()
        not_read = {m for m in markers if getattr(outbound.get(m), "status", None) != "read"}
        problem("sends whose status is not read, the highest Meta sent", {
            f"{m} {getattr(outbound.get(m), 'status', 'missing')}" for m in not_read})
        read = {row.wamid for row in await self.rows(
            "SELECT wamid FROM message_statuses WHERE tenant_id = :t AND status = 'read'")}
        problem("wamids Meta reported read without a stored read status",
                {entry["response"]["messages"][0]["id"] for entry in accepted} - read)
        now = {row.message_id: row.status for row in outbound.values()}
        problem("statuses that went back", {f"{m}: {old} -> {now.get(m)}" for m, old in self.statuses.items()
                                            if now.get(m) is None or (now[m] != old and not status_wins(old, now[m]))})

        projected, cached = await self.conversations()
        problem("inconsistent conversations", self.inconsistent(projected, cached))
        problem("conversations written to this round whose state the processor does not hold",
                {self.key(c) for c in self.customers} - set(cached))
        problem("projected versions that went back", {f"{k}: {v} -> {projected.get(k, ('', -1))[1]}"
                                                       for k, v in self.versions.items()
                                                       if projected.get(k, ("", -1))[1] < v})
        problem("processor versions that went back", {f"{k}: {v} -> {cached[k][1]}" for k, v in self.cached.items()
                                                       if k in cached and cached[k][1] < v})

        letters = await asyncio.gather(*(asyncio.to_thread(read_letters, self.settings, group) for group in GROUPS))
        for group, found in zip(GROUPS, letters, strict=True):
            values = Counter(letter.value for _, letter in found)
            problem(f"dead letters of {group} that are not the poison records", values - Counter(self.poison[group]))
            problem(f"poison records missing from the dead letters of {group}", Counter(self.poison[group]) - values)

        if recovery_s > RECOVERY_BOUND_S:
            problems.append(f"back to normal latency after {recovery_s:.1f}s, bound {RECOVERY_BOUND_S:.0f}s")
        self.versions = {k: v for k, (_, v) in projected.items()}
        self.cached = {k: v for k, (_, v) in cached.items()}
        self.statuses = {m: s for m, s in now.items() if s is not None}
        row = {"fault": fault, "restarted_s": round(restarted_s, 2), "recovery_s": round(recovery_s, 2),
               "lost": len(set(self.inbound) - set(stored)) + len(markers - set(calls)) + len(not_read),
               "duplicated": len(duplicated), "ambiguous": len(new_ambiguous), "in_flight": in_flight,
               "refused_webhooks": refused, "dead_letters": sum(len(found) for found in letters),
               "violations": len(problems)}
        self.figures.append(row)
        (self.stack.root / "chaos-figures.json").write_text(json.dumps(
            {"normal_latency_s": round(self.normal_s, 2), "recovery_bound_s": RECOVERY_BOUND_S,
             "faults": self.figures}, indent=2))
        return problems, row


@pytest.fixture(scope="module")
async def chaos(chaos_stack: LocalStack) -> AsyncIterator[Chaos]:
    stack = chaos_stack
    settings = CoreSettings(environment="test", kafka_bootstrap_servers=stack.kafka, database_url=stack.database_url,
                            redis_url=stack.redis_url)
    db = create_async_engine(stack.database_url, pool_pre_ping=True)
    try:
        async with (AsyncProducer(stack.kafka) as producer,
                    httpx.AsyncClient(base_url=stack.ingress_url, timeout=10) as api,
                    httpx.AsyncClient(base_url=stack.metasim_url, timeout=30) as sim):
            business = await new_business(settings, producer, sim, "chaos")
            load = Chaos(stack, settings, db, api, sim, producer, business)
            await _prepare(load)
            yield load
    finally:
        await db.dispose()


async def _prepare(load: Chaos) -> None:
    """Statuses duplicated and reordered, the rules, the customers' open windows, the normal latency."""
    changed = await load.sim.put("/_sim/webhooks", json={
        "duplicate_rate": 0.3, "reorder_rate": 0.3, "batch_max": 4, "batch_window_s": 0.05,
        "retry_initial_s": 0.2, "retry_max_s": 1.0})
    assert changed.status_code == 200, changed.text
    # The probe's "hello, is anyone there?" must reach a person, not the AI's small-talk greeting (on by default).
    off = await load.api.put("/v1/settings/small-talk", headers=load.business.auth, json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False, off.text
    unreadable = {"type": "regex", "pattern": "(unclosed"}
    reply = [{"type": "reply", "message": {"type": "text", "text": {"body": "It depends"}}}]
    refused = await load.api.post("/v1/automations", headers=load.business.auth, json={
        "name": "cannot be evaluated", "trigger": unreadable, "actions": reply})
    assert refused.status_code == 422, refused.text
    async with load.db.begin() as conn:  # stored before rules were checked at save: skipped, never run
        await conn.execute(insert(automation_rules).values(
            id=str(uuid.uuid4()), tenant_id=load.tenant, name="stored unchecked", position=0, trigger=unreadable,
            conditions=[], actions=reply))
    redis = connect_redis(load.stack.redis_url)
    try:
        await bump_config_version(redis, load.tenant)
    finally:
        await redis.aclose()
    created = await load.api.post("/v1/automations", headers=load.business.auth, json={
        "name": "prices", "trigger": {"type": "keyword", "keywords": [KEYWORD]}, "actions": reply})
    assert created.status_code == 201, created.text
    load.rule_id = created.json()["id"]
    await load.probe()  # the first one waits for every consumer group to settle
    load.customers = [fresh_id() for _ in range(CUSTOMERS)]
    await asyncio.gather(*(load.write(c, "hello") for c in load.customers))
    baseline = [await load.probe() for _ in range(3)]
    load.normal_s = max(3 * statistics.median(baseline), statistics.median(baseline) + 3.0)
    await until(load.quiet, timeout=SETTLE_S, what="the first messages to settle", interval=0.3)


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_fault_under_load_loses_nothing_sends_nothing_twice_and_recovers(chaos: Chaos, fault: str) -> None:
    problems, row = await chaos.round(fault)
    assert not problems, f"after the {fault} fault ({row}):\n" + "\n".join(problems)


async def test_the_figures_of_every_fault_are_written(chaos: Chaos, chaos_stack: LocalStack) -> None:
    columns = ["fault", "restarted_s", "recovery_s", "lost", "duplicated", "ambiguous", "in_flight",
               "refused_webhooks", "dead_letters", "violations"]
    print(f"\nchaos figures (normal latency {chaos.normal_s:.1f}s, recovery bound {RECOVERY_BOUND_S:.0f}s):")
    print("  ".join(f"{c:>16}" for c in columns))
    for row in chaos.figures:
        print("  ".join(f"{row[c]!s:>16}" for c in columns))
    written = json.loads((chaos_stack.root / "chaos-figures.json").read_text())
    print(f"written to {chaos_stack.root / 'chaos-figures.json'}")
    assert [row["fault"] for row in written["faults"]] == list(FAULTS)
