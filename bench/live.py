"""``aerostic bench live``: the console's live feed under load, and what it costs the webhook hot path.

Starts the stack the feed needs (broker, PostgreSQL, Redis, the web server, the stream workers), connects
``TENANTS`` tenants with a number and an API key each, then posts customers' messages as signed webhooks to
the real ingress at ``--rate`` per second, spread over the tenants:

1. with no live client (``IDLE_S`` seconds; the feed has not even started): the webhook POST p99 alone;
2. with one stream (``ONE_CLIENT_S``): the feed's consumer running, no fan-out to speak of (diagnostic);
3. with ``--clients`` streams on ``GET /v1/live`` (shared round robin by the tenants), held by another
   process on raw asyncio streams, for ``--seconds``: the webhook POST p99 again, and for every client the
   time from the webhook's POST to the ``message.in`` event on its stream.

The baseline is a control run first: a fresh stack posting the same webhooks through the same phases with no
live client at all (the feed never starts). ``ratio`` compares the webhook p99 with the streams to the control's
in the same phase, not to the first idle phase: the embedded broker (Tansu 0.6.0, in memory) lists every stored
batch of a partition on each fetch that finds new data, so its CPU and the webhook's acknowledgement grow with
what the run has posted so far (measured: with no client at all, p99 5.3 → 11.3 ms from the first idle phase to
the third; Apache Kafka finds an offset through its index). ``drift`` is that growth: the control's p99 in the
third phase over its first.

A client must get every message of its tenant posted while it was connected: any it lacks ``DRAIN_S`` after
the last webhook is missed. Streams refused (429/503) or cut (a slow client) are counted, not fatal: an
overloaded system is reported as such. Ends with one line:
``RESULT live clients=… rate=… delivered_p99_ms=… missed=… webhook_p99_idle_ms=… webhook_p99_clients_ms=…
webhook_p99_control_ms=… ratio=… drift=… refused=… cut=… webhook_errors=…``
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from urllib.parse import urlsplit

import orjson
import psutil

from bench.loadgen import build_request, percentile
from broker.producer import AsyncProducer
from config.settings import CoreSettings
from ingress.signature import sign
from stack.launcher import LocalStack
from tenants.api_keys import create_key_for
from tenants.commands import attach_number, create_tenant
from vault.cipher import Vault, generate_key_spec

SECRET = "bench-live-app-secret"  # noqa: S105 - the local stack's app secret
TENANTS = 4
WARM_S = 5.0
IDLE_S = 30.0
ONE_CLIENT_S = 20.0
DRAIN_S = 5.0
POST_CONNECTIONS = 8
CONNECT_TIMEOUT_S = 60.0
MAX_RATIO = 1.10
_WAMID = b'"wamid":"'


@dataclass
class Tenant:
    tenant_id: str
    phone_number_id: str
    waba_id: str
    api_key: str


@dataclass
class Posts:
    """The webhooks one phase posted: when each wamid left (wall clock), its tenant, the POST latencies."""

    sent: dict[str, tuple[float, int]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


def webhook(tenant: Tenant, wamid: str, wa_id: str, text: str) -> bytes:
    """A customer's text message as Meta's webhook carries it."""
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": tenant.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": tenant.phone_number_id},
            "contacts": [{"profile": {"name": "Bench"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": "text",
                          "text": {"body": text}}]}}]}]})


class Poster:
    """Signed webhook POSTs over a few keep-alive connections (raw asyncio: no client library in the timing)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(POST_CONNECTIONS):
            self.pool.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def close(self) -> None:
        while not self.pool.empty():
            _, writer = self.pool.get_nowait()
            writer.close()

    async def post(self, body: bytes) -> int:
        reader, writer = await self.pool.get()
        try:
            writer.write(build_request(body, sign(body, SECRET.encode())))
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            self.pool.put_nowait((reader, writer))
            return int(head.split(b" ", 2)[1])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            self.pool.put_nowait(await asyncio.open_connection(self.host, self.port))
            return 0


async def post_for(poster: Poster, tenants: list[Tenant], rate: int, seconds: float, posts: Posts) -> None:
    """Post ``rate`` webhooks a second for ``seconds``, round robin over the tenants."""
    async def one(index: int) -> None:
        tenant_index = index % len(tenants)
        wamid = f"wamid.bench-live-{uuid.uuid4().hex}"
        body = webhook(tenants[tenant_index], wamid, f"9170{index % 1000:06d}", f"question {index}")
        posts.sent[wamid] = (time.time(), tenant_index)
        began = time.perf_counter()
        status = await poster.post(body)
        if status == 200:
            posts.latencies_ms.append((time.perf_counter() - began) * 1000)
        else:
            posts.errors += 1
            posts.sent.pop(wamid, None)

    count, began, tasks = int(rate * seconds), time.perf_counter(), []
    for i in range(count):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)


# --- the clients' process ---------------------------------------------------------------------------------

@dataclass
class ClientResult:
    tenant_index: int
    connected_at: float = 0.0
    status: int = 0
    cut: bool = False
    received: list[tuple[str, float]] = field(default_factory=list)  # (wamid, wall clock)


async def _stream(url: str, key: str, result: ClientResult, opened: asyncio.Event, stop: asyncio.Event) -> None:
    parts = urlsplit(url)
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    except OSError:
        opened.set()
        return
    writer.write(f"GET /v1/live HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {key}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        result.status = int(head.split(b" ", 2)[1])
        if result.status != 200:
            return
        buffer = b""
        while not stop.is_set():
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)  # chunked transfer encoding
            if size == 0:
                break
            buffer += (await reader.readexactly(size + 2))[:-2]
            *frames, buffer = buffer.split(b"\n\n")
            now = time.time()
            for frame in frames:
                if not result.connected_at and b"id: " in frame:
                    result.connected_at = now
                    opened.set()
                at = frame.find(_WAMID)
                if at >= 0 and b'"type":"message.in"' in frame:
                    start = at + len(_WAMID)
                    result.received.append((frame[start:frame.index(b'"', start)].decode(), now))
        result.cut = not stop.is_set()
    except (OSError, asyncio.IncompleteReadError, ValueError):
        result.cut = not stop.is_set()
    finally:
        opened.set()
        writer.close()


async def _clients(url: str, keys: list[tuple[int, str]], conn: Connection) -> None:
    stop = asyncio.Event()
    results = [ClientResult(tenant_index) for tenant_index, _ in keys]
    openings = [asyncio.Event() for _ in keys]
    tasks = []
    for (_, key), result, opened in zip(keys, results, openings, strict=True):
        tasks.append(asyncio.create_task(_stream(url, key, result, opened, stop)))
        await asyncio.sleep(0.01)  # a connection storm is not what is measured
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in openings)), CONNECT_TIMEOUT_S)
    conn.send("connected")
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(results)


def _clients_main(url: str, keys: list[tuple[int, str]], conn: Connection) -> None:
    import uvloop

    uvloop.run(_clients(url, keys, conn))


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _spawn_clients(url: str, keys: list[tuple[int, str]]) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    """The clients' process, once all its streams are open (or refused)."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_clients_main, args=(url, keys, child), daemon=True)
    process.start()
    if not parent.poll(CONNECT_TIMEOUT_S + 60):
        raise RuntimeError("the clients' process did not report")
    parent.recv()
    return process, parent


# --- the run ----------------------------------------------------------------------------------------------

class LiveBench:
    def __init__(self) -> None:
        self.stack = LocalStack(extra_env={"AEROSTIC_APP_SECRETS": SECRET, "AEROSTIC_LIVE_MAX_PER_TENANT": "1000",
                                           "AEROSTIC_LIVE_MAX_CONNECTIONS": "5000"})
        self.tenants: list[Tenant] = []

    def start(self) -> None:
        self.stack.start_services()
        self.stack.prepare()
        self.stack.start_ingress()
        self.stack.start_streams()

    async def connect_tenants(self) -> None:
        settings = CoreSettings(environment=self.stack.environment, kafka_bootstrap_servers=self.stack.kafka,
                                database_url=self.stack.database_url, redis_url=self.stack.redis_url,
                                topic_prefix=self.stack.topic_prefix)
        vault = Vault.from_spec(generate_key_spec("bench"))
        async with AsyncProducer(settings.kafka_bootstrap_servers) as producer:
            for i in range(TENANTS):
                tenant_id = await create_tenant(settings, f"bench live {i}")
                pnid, waba = str(uuid.uuid4().int)[:15], str(uuid.uuid4().int)[:15]
                await attach_number(settings, producer, tenant_id=tenant_id, phone_number_id=pnid, waba_id=waba,
                                    token=uuid.uuid4().hex, vault=vault)
                _, key = await create_key_for(settings, tenant_id=tenant_id, name="bench live")
                self.tenants.append(Tenant(tenant_id, pnid, waba, key))

    async def phase(self, rate: int, seconds: float, name: str = "", clients_pid: int | None = None) -> Posts:
        poster, posts = Poster(self.stack.ingress_url), Posts()
        await poster.open()
        watched = {"web server": self.stack.children["ingress"].pid, "broker": self.stack.services["kafka"].child.pid,
                   "stream worker": self.stack.children["streams"].pid, "bench clients": clients_pid}
        before = {k: _cpu(pid) for k, pid in watched.items()}
        began, load = time.perf_counter(), os.getloadavg()[0]
        try:
            await post_for(poster, self.tenants, rate, seconds, posts)
        finally:
            await poster.close()
        if name:  # where the CPU went: the web server's share is the feed's cost to the webhook path
            wall = time.perf_counter() - began
            used = ", ".join(f"{k} {(_cpu(pid) - before[k]) / wall * 100:.0f}%" for k, pid in watched.items() if pid)
            print(f"{name}: CPU of one core: {used}; load average {load:.1f} → {os.getloadavg()[0]:.1f}", flush=True)
        return posts


def summary(name: str, posts: Posts) -> float:
    """Print a phase's webhook count, p50, p99 and errors; return its p99."""
    latencies = sorted(posts.latencies_ms)
    p99 = percentile(latencies, 0.99)
    print(f"{name}: {len(latencies)} webhooks, p50_ms={percentile(latencies, 0.5):.1f} p99_ms={p99:.1f} "
          f"errors={posts.errors}", flush=True)
    return p99


def control(rate: int, seconds: float) -> dict[str, float]:
    """The webhook p99 of each phase on a fresh stack with no live client (the feed never starts)."""
    bench = LiveBench()
    p99: dict[str, float] = {}
    try:
        bench.start()
        asyncio.run(bench.connect_tenants())
        asyncio.run(bench.phase(rate, WARM_S))
        for name, phase_s in (("idle", IDLE_S), ("one", ONE_CLIENT_S), ("clients", seconds)):
            label = f"control, phase {name}"
            p99[name] = summary(label, asyncio.run(bench.phase(rate, phase_s, label)))
    except Exception as exc:  # reported as overloaded by the caller: no control, no ratio
        print(f"bench live's control run did not complete: {exc!r}", flush=True)
    finally:
        bench.stack.stop()
    return p99


def against_control(loaded_p99: float, baseline: dict[str, float]) -> tuple[float, float]:
    """``ratio``: the webhook p99 with the streams over the control's in the same phase; ``drift``: the control's
    p99 in that phase over its first (the broker's growth alone). NaN where the control has no figure."""
    nan = float("nan")
    control_p99, idle_p99 = baseline.get("clients", nan), baseline.get("idle", nan)
    ratio = loaded_p99 / control_p99 if control_p99 > 0 else nan
    drift = control_p99 / idle_p99 if idle_p99 > 0 else nan
    return ratio, drift


def main(clients: int = 200, rate: int = 100, seconds: float = 60.0) -> int:
    baseline = control(rate, seconds)
    bench = LiveBench()
    figures: dict[str, float | int] = {}
    process: multiprocessing.process.BaseProcess | None = None
    try:
        bench.start()
        asyncio.run(bench.connect_tenants())
        warm = asyncio.run(bench.phase(rate, WARM_S))  # the router has joined its group and cached the numbers
        print(f"warm-up: {len(warm.sent)} webhooks, errors={warm.errors}", flush=True)
        idle = asyncio.run(bench.phase(rate, IDLE_S, "0 clients"))
        figures["webhook_p99_idle_ms"] = summary("0 clients", idle)

        keys = [(i % TENANTS, bench.tenants[i % TENANTS].api_key) for i in range(clients)]
        # One stream first: the feed's consumer running, without the fan-out to many (where a cost comes from).
        process, parent = _spawn_clients(bench.stack.ingress_url, keys[:1])
        one = asyncio.run(bench.phase(rate, ONE_CLIENT_S, "1 client", process.pid))
        parent.send("stop")
        parent.recv()
        process.join(10)
        summary("1 client", one)
        process, parent = _spawn_clients(bench.stack.ingress_url, keys)
        loaded = asyncio.run(bench.phase(rate, seconds, f"{clients} clients", process.pid))
        time.sleep(DRAIN_S)  # an event later than this after its webhook counts as missed
        parent.send("stop")
        results: list[ClientResult] = parent.recv() if parent.poll(60) else []
        figures.update(_delivery(results, loaded, clients))
        figures["webhook_errors"] = idle.errors + loaded.errors
        figures["webhook_p99_clients_ms"] = summary(f"{clients} clients", loaded)
    except Exception as exc:  # an overloaded or failing system is reported, not crashed on
        print(f"bench live did not complete: {exc!r}", flush=True)
        figures.setdefault("overloaded", 1)
    finally:
        if process is not None and process.is_alive():
            process.kill()
        bench.stack.stop()
    idle_p99 = float(figures.get("webhook_p99_idle_ms", float("nan")))
    loaded_p99 = float(figures.get("webhook_p99_clients_ms", float("nan")))
    control_p99 = baseline.get("clients", float("nan"))
    ratio, drift = against_control(loaded_p99, baseline)
    delivered = float(figures.get("delivered_p99_ms", float("nan")))
    print(f"RESULT live clients={clients} rate={rate} delivered_p99_ms={delivered:.1f} "
          f"missed={figures.get('missed', -1)} webhook_p99_idle_ms={idle_p99:.1f} "
          f"webhook_p99_clients_ms={loaded_p99:.1f} webhook_p99_control_ms={control_p99:.1f} ratio={ratio:.2f} "
          f"drift={drift:.2f} refused={figures.get('refused', -1)} "
          f"cut={figures.get('cut', -1)} webhook_errors={figures.get('webhook_errors', -1)}", flush=True)
    healthy = figures.get("missed") == 0 and ratio <= MAX_RATIO and not figures.get("overloaded")
    return 0 if healthy else 1


def _delivery(results: list[ClientResult], posts: Posts, clients: int) -> dict[str, float | int]:
    """Delivery p99 and missed events over every client that was connected, refused and cut counts."""
    latencies: list[float] = []
    missed = 0
    for result in results:
        if result.status != 200 or not result.connected_at:
            continue
        got = dict(result.received)
        for wamid, (posted, tenant_index) in posts.sent.items():
            if tenant_index != result.tenant_index or posted < result.connected_at:
                continue
            if wamid in got:
                latencies.append((got[wamid] - posted) * 1000)
            else:
                missed += 1
    latencies.sort()
    refused = clients - sum(1 for r in results if r.status == 200)
    cut = sum(1 for r in results if r.cut)
    print(f"delivered {len(latencies)} events to {clients - refused} clients: "
          f"p50_ms={percentile(latencies, 0.5):.1f} p99_ms={percentile(latencies, 0.99):.1f} "
          f"max_ms={max(latencies, default=float('nan')):.1f} missed={missed} refused={refused} cut={cut}",
          flush=True)
    return {"delivered_p99_ms": percentile(latencies, 0.99), "missed": missed, "refused": refused, "cut": cut}
