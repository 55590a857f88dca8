"""``aerostic bench dispatch``: the dispatcher's throughput, limit accuracy, lane priority and fairness between numbers.

Starts a broker, PostgreSQL, Redis and the Meta simulator (its status webhooks switched off,
so only the Graph calls are measured), then runs the dispatcher process in four set-ups and
feeds it ``OutboundRequest`` records directly, each dispatcher's run on an empty embedded broker
(``Bench.fresh_broker``):

1. limits off: as many sends per second as one dispatcher process makes, beside the ceiling: a bare loop of
   the dispatcher's own HTTP client, ``aiohttp`` (its event loop, uvloop) sending the same Graph calls to the same
   simulator, the faster of two runs: with the dispatcher's workers and connections (512 and 512), and with 256
   and 32 (a bare loop is faster with few connections on loopback); then that loop and the dispatcher in turn for
   three rounds, which goes first alternating (``limits_off_rounds``): ``ratio`` = the median of each round's
   dispatcher / ceiling (``ratios``: each round's), ``max_sps`` and ``ceiling_sps`` the medians. Each
   side's CPU milliseconds per send too (``cpu_ratio`` = ceiling's / dispatcher's: the same comparison,
   robust to a machine that other work loads). The same loop on ``httpx`` is reported beside it
   (``httpx_sps``, ``httpx_cpu_ms_per_send``): the client the dispatcher used before. The limits-off number
   has no throughput limit at the simulator. Beside them the dispatcher's hop done bare (``bench.dispatch_relay``:
   the same requests read from Kafka, sent and their results published, nothing else): ``relay_sps``, and
   ``relay_ratio`` = dispatcher / relay, how close the dispatcher gets to what its transport alone allows. With
   ``--scale dispatcher=2`` the limits-off run is repeated with two dispatcher processes (one consumer group);
2. limits on, numbers at 80 and 1,000 msg/s: achieved rate against the limit, and how many
   sliding 1-second windows held more accepted messages than the limit (from the simulator's log); then the
   1,000 msg/s number again with the simulator answering ``--meta-latency-ms`` (250) late, as Meta does
   (``rate1000_meta``): a number keeps rate x answer time calls on the wire, which the loopback hides. Of the three
   runs' busiest seconds, the fullest as a share of its limit (``busiest_share``: how much of the margin is used).
   The same windows are counted on the wire too (``wire_over_limit_windows``, ``na`` without tcpdump): by the
   kernel's timestamps of the calls' packets on the loopback (``bench.wire``), which a busy simulator's event loop
   cannot bunch; the simulator stamps a call when its handler starts;
3. limits on: produce→result latency of interactive replies, idle and then behind a bulk backlog. 500 replies
   each way (``--replies``), 10-30 ms apart at random (``interactive_latencies``): a p99 of 100 samples is their
   second-largest, and the ratio of two such maxima moved between 0.7 and 1.4 from one hundred replies to the next
   within one run. The backlog (20,000) outlasts the replies, which the run checks and prints (``bulk_left``), and
   the bulk lane's rate meanwhile is reported as a share of what the replies leave of the number's (``bulk_kept``).
   The same replies are timed to the simulator's accepting them too (``accept_p99_idle_ms``, ``accept_p99_bulk_ms``,
   ``accept_ratio``): the reply's way to Meta without the result's way back through the broker to the bench's reader;
4. two tenants' campaigns: one on the 80 msg/s number queued first, then one on the 1,000 msg/s number; the
   second's ideal time over the time it took (``fair_ratio``).

The defaults (5,000 sends, 5 s limited runs, a 20,000 bulk backlog, 500 replies) finish within five minutes; the
issue's long version: ``--sends 20000 --seconds 10 --bulk 100000``. ``main(interactive_only=True)`` runs set-up 3
alone (about a minute), to iterate on lane priority.

Ends with one line: ``RESULT dispatch max_sps=… ceiling_sps=… ratio=… ratios=… relay_sps=… relay_ratio=…
relay_cpu_ms_per_send=… cpu_ms_per_send=… ceiling_cpu_ms_per_send=… cpu_ratio=… httpx_sps=… httpx_cpu_ms_per_send=…
rate80=… rate1000=… rate1000_meta=… over_limit_windows=… wire_over_limit_windows=… busiest_share=…
interactive_p99_idle_ms=… interactive_p99_bulk_ms=… bulk_idle_ratio=… bulk_kept=… accept_p99_idle_ms=…
accept_p99_bulk_ms=… accept_ratio=… lanes_over_limit_windows=… lanes_wire_over_limit_windows=… (and the same lane
figures prefixed ``split_``) fair_ratio=…`` (and ``max_sps_2=`` with two dispatchers).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp
import httpx
import psutil
import uvloop
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

from bench.dispatch_relay import relay
from bench.relay import create_topics
from bench.rounds import in_turn
from bench.wire import Capture, capture
from broker.producer import AsyncProducer
from config.settings import CoreSettings, DispatcherSettings
from schemas.catalogue import OUTBOUND_BULK, OUTBOUND_INTERACTIVE, OUTBOUND_RESULTS
from schemas.outbound import OutboundRequest
from stack.launcher import LocalStack
from stack.processes import wait_until
from stack.scale import process_names
from tenants.commands import attach_number, create_tenant
from vault.cipher import Vault, generate_key_spec

SECRET = "bench-app-secret"  # noqa: S105 - the simulator's local app secret
CONCURRENCY = DispatcherSettings.model_fields["concurrency"].default  # the dispatcher's workers, and the ceiling's
HTTP_CONNECTIONS = DispatcherSettings.model_fields["http_connections"].default  # its calls on the wire at once
FETCH_WAIT_MS = CoreSettings.model_fields["kafka_fetch_wait_ms"].default  # the dispatcher's consumer's, and the relay's
SMALL_POOL = (256, 32)  # the ceiling is also measured with this few workers and connections; the faster one counts
META_LATENCY_MS = 250  # how late the simulator answers for ``rate1000_meta`` (Meta: about 100-350 ms)
INTERACTIVE_MAX_S = 30.0  # each interactive measurement stops producing after this long
LIMITS_OFF_ROUNDS = 3  # the ceiling and the dispatcher with limits off, in turn (``limits_off_rounds``)
CEILING_MAX_S = 30.0  # the ceiling's loop stops sending after this long (a loaded machine: fewer sends)
UNLIMITED = 1_000_000  # the limits-off number's throughput at the simulator: it never answers 130429
MAX_WAIT_S = 45.0  # a limits-off run reports what was accepted by then
READY_MAX_S = 120.0  # a dispatcher serves its metrics within this long of its start (a loaded machine: slowly)
QUIET_WEBHOOKS = {"enabled": False}
RATE_1000 = 1000 / (1 + DispatcherSettings.model_fields["rate_margin"].default)  # the most a 1,000 msg/s number sends
# The two campaigns of ``measure_fairness``: a minute at 80 msg/s, more than the bulk buffer holds, then 3 s at 1,000.
FAIR_SLOW, FAIR_FAST = 5000, 3000


class Bench:
    """The stack, a tenant with three numbers, and the helpers to feed and watch the dispatcher."""

    def __init__(self) -> None:
        self.stack = LocalStack()
        self.vault_keys = generate_key_spec("bench")
        self.tenant_id = ""
        self.numbers: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.producer: Producer | None = None
        self.recipients = 0  # every request goes to a new recipient: no pair limit in the way
        self.cpu: Callable[[], float] = lambda: 0.0  # CPU seconds of the running dispatchers so far

    def start(self) -> None:
        stack = self.stack
        stack.start_services()
        stack.prepare()
        stack.ingress_url = "http://127.0.0.1:9"  # no ingress: the simulator's webhooks are off
        stack.start_metasim(app_secret=SECRET)
        httpx.put(f"{stack.metasim_url}/_sim/webhooks", json=QUIET_WEBHOOKS).raise_for_status()
        self.producer = self._producer()
        asyncio.run(self._tenant())

    def _producer(self) -> Producer:
        return Producer({"bootstrap.servers": self.stack.kafka, "linger.ms": 20, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 500_000, "log_level": 3})

    def fresh_broker(self) -> None:
        """An empty embedded broker for the next set-up (restarted on its port, the topics created again): its fetch
        lists every batch a partition holds, so a set-up measured the earlier set-ups' records too (alternated, a
        reply behind a backlog in a dispatcher of its own: p99 1.35-1.41 times idle on an empty broker, 1.64-1.78
        after the set-up before it). Apache Kafka finds an offset through its index. No dispatcher runs between
        set-ups, and what one needs is in PostgreSQL and Redis; a broker the stack adopted is left as it is."""
        if "kafka" not in self.stack.services:
            return
        assert self.producer is not None
        self.producer.flush(30)
        self.stack.restart_broker()
        self.producer = self._producer()

    async def _tenant(self) -> None:
        settings = CoreSettings(environment=self.stack.environment, kafka_bootstrap_servers=self.stack.kafka,
                                database_url=self.stack.database_url, redis_url=self.stack.redis_url)
        self.tenant_id = await create_tenant(settings, "bench")
        for name, throughput in (("max", 1000), ("n80", 80), ("n1000", 1000)):
            pnid, waba, token = str(uuid.uuid4().int)[:15], str(uuid.uuid4().int)[:15], uuid.uuid4().hex
            async with AsyncProducer(settings.kafka_bootstrap_servers) as producer:
                await attach_number(settings, producer, tenant_id=self.tenant_id, phone_number_id=pnid,
                                    waba_id=waba, throughput_mps=throughput, token=token,
                                    vault=Vault.from_spec(self.vault_keys))
            httpx.post(f"{self.stack.metasim_url}/_sim/numbers", json={  # noqa: ASYNC210 - set-up only
                "phone_number_id": pnid, "waba_id": waba, "token": token,
                "throughput": UNLIMITED if name == "max" else throughput,
            }).raise_for_status()
            self.numbers[name] = pnid
            self.tokens[name] = token

    @contextmanager
    def dispatcher(self, processes: int = 1, *, replies: int = 0, **settings: str) -> Iterator[None]:
        """``processes`` dispatchers (one consumer group) for the block; with ``replies``, that many more send the
        interactive lane and those the rest (``--scale replies=N``). They start on an empty broker (``fresh_broker``),
        as the bare hop starts on topics of its own."""
        self.fresh_broker()
        self.stack.scale["dispatcher"] = processes
        self.stack.scale["replies"] = replies
        name = f"dispatcher{len(self.stack.children)}"
        self.stack.start_dispatcher(vault_keys=self.vault_keys, name=name, concurrency=str(CONCURRENCY),
                                    http_connections=str(HTTP_CONNECTIONS), **settings)
        names = process_names(name, processes) + process_names(f"{name}-replies", replies)
        children = [self.stack.children[each] for each in names]
        for each in names:  # a loaded machine imports slowly: time it apart
            url = self.stack.metrics_url(each)
            wait_until(partial(_answers, url), timeout=READY_MAX_S, what=f"{each}'s metrics")
        self.cpu = lambda: sum(sum(psutil.Process(c.pid).cpu_times()[:2]) for c in children)
        try:
            yield
        finally:
            self.stack.stop_in_turn(names)

    def produce(self, number: str, count: int, *, lane: str = "bulk", prefix: str = "",
                topic: str | None = None) -> list[str]:
        """Queue ``count`` in-window texts from ``number`` to distinct recipients (on ``lane``'s topic, or
        ``topic``); return their ids."""
        assert self.producer is not None
        topic = topic or (OUTBOUND_BULK if lane == "bulk" else OUTBOUND_INTERACTIVE).name
        ids = []
        now = datetime.now(UTC)
        window = time.time() + 3600
        for i in range(count):
            self.recipients += 1
            message_id = f"{prefix}{uuid.uuid4().hex}"
            request = OutboundRequest(
                event_id=message_id, tenant_id=self.tenant_id, message_id=message_id,
                idempotency_key=f"{self.tenant_id}:{message_id}", phone_number_id=self.numbers[number],
                to=self.recipient(), message={"type": "text", "text": {"body": f"m{i}"}},
                lane=lane, window_until=window, created_at=now)
            while True:
                try:
                    self.producer.produce(topic, request.encode(), request.conversation_key.encode())
                    break
                except BufferError:
                    self.producer.poll(0.05)
            ids.append(message_id)
        self.producer.flush(60)
        return ids

    def send_target(self, number: str) -> tuple[str, dict[str, str]]:
        """The URL and headers of a Graph send from ``number`` at the simulator (for a bare client's calls)."""
        url = f"{self.stack.metasim_url}/v23.0/{self.numbers[number]}/messages"
        return url, {"Authorization": f"Bearer {self.tokens[number]}", "Content-Type": "application/json"}

    def recipient(self) -> str:
        """The recipient of the last request produced."""
        return f"1{self.recipients:010d}"

    def accepted(self) -> int:
        return int(httpx.get(f"{self.stack.metasim_url}/_sim/counts", timeout=30).json()["accepted"])

    def accepted_sends(self, number: str) -> list[dict[str, Any]]:
        """The simulator's log entries of ``number``'s accepted sends."""
        entries = httpx.get(f"{self.stack.metasim_url}/_sim/requests",
                            params={"phone_number_id": self.numbers[number]}, timeout=60).json()["data"]
        return [e for e in entries if e["status"] == 200]

    def accepted_times(self, number: str) -> list[float]:
        return sorted(e["time"] for e in self.accepted_sends(number))

    def reset(self) -> None:
        httpx.post(f"{self.stack.metasim_url}/_sim/reset").raise_for_status()

    def stop(self) -> None:
        self.stack.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_accepted(bench: Bench, target: int, timeout: float) -> int:
    """Wait until ``target`` sends were accepted or ``timeout`` passed; the count accepted (reported, not raised:
    an overloaded run still gives its rate)."""
    deadline = time.monotonic() + timeout
    while (accepted := bench.accepted()) < target:
        if time.monotonic() > deadline:
            print(f"  only {accepted} of {target} sends accepted in {timeout:.0f}s", flush=True)
            return accepted
        time.sleep(0.2)
    return accepted


def steady_rate(times: list[float]) -> float:
    """Sends per second between the 10th and 90th percentile of accept times."""
    if len(times) < 2:
        return 0.0
    lo, hi = times[len(times) // 10], times[len(times) * 9 // 10]
    return (len(times) * 8 // 10) / (hi - lo) if hi > lo else float("inf")


def second_counts(times: list[float]) -> list[int]:
    """The accepts in each sliding 1-second window, one starting at each accept (``times`` sorted)."""
    return [bisect.bisect_left(times, start + 1.0) - i for i, start in enumerate(times)]


def busiest_second(times: list[float]) -> int:
    """The most accepts in a 1-second window."""
    return max(second_counts(times), default=0)


def over_limit_windows(times: list[float], limit: int) -> int:
    """Sliding 1-second windows (starting at each accept) that hold more than ``limit`` accepts."""
    return sum(count > limit for count in second_counts(times))


@dataclass(frozen=True)
class Windows:
    """A run's sliding 1-second windows over its limit, and its busiest window's share of the limit."""

    over: int
    busiest: float


def windows(times: list[float], limit: int) -> Windows:
    return Windows(over_limit_windows(times, limit), busiest_second(times) / limit)


def wire_windows(wire: Capture, number_id: str, limit: int) -> Windows | None:
    """The same windows of a number's calls by the kernel's clock on the loopback (``bench.wire``; None: no
    capture)."""
    times = wire.times(f"/{number_id}/messages")
    return None if times is None else windows(times, limit)


def wire_over(runs: Iterable[Windows | None]) -> str:
    """The windows over the limit on the wire in all of ``runs``, for a RESULT line (``na``: any not captured)."""
    counted = list(runs)
    return "na" if None in counted else str(sum(run.over for run in counted if run is not None))


def measure_max(bench: Bench, count: int, processes: int = 1) -> tuple[float, float]:
    """Sends per second as the simulator saw them, and the dispatchers' CPU milliseconds per send."""
    bench.reset()
    with bench.dispatcher(processes, rate_limits="false"):
        before = bench.cpu()
        bench.produce("max", count)
        accepted = wait_accepted(bench, count, timeout=MAX_WAIT_S)
        cpu_s = bench.cpu() - before
    return steady_rate(bench.accepted_times("max")), cpu_s * 1000 / max(accepted, 1)


def measure_ceiling(bench: Bench, count: int, client: str = "aiohttp", *, workers: int = CONCURRENCY,
                    connections: int = HTTP_CONNECTIONS) -> tuple[float, float]:
    """A bare client loop: ``count`` Graph sends from the "max" number by ``workers`` workers, at most
    ``connections`` calls on as many connections (the dispatcher's call gate), on the dispatcher's event loop
    (uvloop), with ``client`` ("aiohttp", the dispatcher's, or "httpx"); sends per second as the simulator saw
    them, and the loop's CPU milliseconds per send."""
    bench.reset()
    url, headers = bench.send_target("max")
    stop_at = time.monotonic() + CEILING_MAX_S
    sent = 0

    def next_body() -> bytes | None:
        nonlocal sent
        if sent >= count or time.monotonic() > stop_at:
            return None
        sent += 1
        bench.recipients += 1
        return (f'{{"messaging_product":"whatsapp","to":"2{bench.recipients:010d}","type":"text",'
                f'"text":{{"body":"c{sent}"}}}}').encode()

    async def with_aiohttp() -> None:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(sock_read=30)) as session:
            calls = asyncio.Semaphore(connections)  # as the dispatcher's CallGate: the pool never queues

            async def worker() -> None:
                while (body := next_body()) is not None:
                    async with calls:
                        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                            async with session.post(url, data=body, headers=headers) as response:
                                await response.read()

            await asyncio.gather(*(worker() for _ in range(workers)))

    async def with_httpx() -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0, pool=60.0)) as session:
            calls = asyncio.Semaphore(connections)

            async def worker() -> None:
                while (body := next_body()) is not None:
                    async with calls:
                        with contextlib.suppress(httpx.HTTPError):
                            await session.post(url, content=body, headers=headers)

            await asyncio.gather(*(worker() for _ in range(workers)))

    cpu = time.thread_time()
    uvloop.run(with_aiohttp() if client == "aiohttp" else with_httpx())
    cpu_s = time.thread_time() - cpu
    return steady_rate(bench.accepted_times("max")), cpu_s * 1000 / max(bench.accepted(), 1)


def limits_off_rounds(bench: Bench, count: int, pool: tuple[int, int],
                      rounds: int = LIMITS_OFF_ROUNDS) -> list[tuple[float, float, float, float]]:
    """``rounds`` rounds of the ceiling (``pool``: its workers and connections) and one dispatcher with limits off,
    the ceiling first in the first round, the dispatcher in the second …: per round, the ceiling's sends a second and
    CPU ms a send, then the dispatcher's. Run one after the other once, the ratio compared a fast minute with a slow
    one (the ceiling read 3,093 and 4,915 sends a second within 15 minutes)."""
    pairs = in_turn(lambda: measure_ceiling(bench, count, workers=pool[0], connections=pool[1]),
                    lambda: measure_max(bench, count), rounds)
    return [(*ceiling, *dispatcher) for ceiling, dispatcher in pairs]


def measure_relay(bench: Bench, count: int) -> tuple[float, float]:
    """The dispatcher's hop done bare (``bench.dispatch_relay``): ``count`` requests queued on a topic partitioned as
    the outbound lanes, read, sent from the "max" number and their results published by ``SMALL_POOL``'s workers on
    its connections (the faster of the ceiling's pools on loopback); sends per second as the simulator saw them, and
    the relay's CPU milliseconds per send."""
    bench.reset()
    stack = bench.stack
    run = uuid.uuid4().hex[:8]
    source, target = f"{stack.topic_prefix}bench.relay.{run}.requests", f"{stack.topic_prefix}bench.relay.{run}.results"
    lanes = OUTBOUND_BULK.partitions
    create_topics(stack.kafka, [source, target], min(lanes, stack.partitions_cap() or lanes))
    bench.produce("max", count, topic=source)
    answered, cpu_s = relay(stack.kafka, source, target, f"{stack.metasim_url}/v23.0/{bench.numbers['max']}/messages",
                            bench.tokens["max"], count, workers=SMALL_POOL[0], connections=SMALL_POOL[1],
                            fetch_wait_ms=FETCH_WAIT_MS, max_s=MAX_WAIT_S)
    if answered < count:
        print(f"  the relay had {answered} of {count} calls answered in {MAX_WAIT_S:.0f}s", flush=True)
    return steady_rate(bench.accepted_times("max")), cpu_s * 1000 / max(answered, 1)


@dataclass
class Limited:
    """One limited run: the share of its limit a number sent, and its 1-second windows."""

    rate: float
    at_sim: Windows  # by the simulator's clock
    on_wire: Windows | None  # by the kernel's clock on the loopback (None: not captured)


def measure_limited(bench: Bench, number: str, limit: int, seconds: int, latency_ms: float = 0) -> Limited:
    """``number``'s run at its ``limit``, with the simulator answering ``latency_ms`` late (its arrival times: a call
    reaches Meta's limit check one answer time before it returns), and its calls' arrivals on the wire."""
    bench.reset()
    faults = f"{bench.stack.metasim_url}/_sim/faults/{bench.numbers[number]}"
    if latency_ms:
        httpx.post(faults, json={"latency_ms": latency_ms}).raise_for_status()
    try:
        with capture(bench.stack.metasim_port) as wire, bench.dispatcher():
            bench.produce(number, limit * seconds)
            wait_accepted(bench, limit * seconds, timeout=seconds * 2 + 20)
    finally:
        if latency_ms:
            httpx.delete(faults).raise_for_status()
    times = bench.accepted_times(number)
    return Limited(steady_rate(times) / limit, windows(times, limit), wire_windows(wire, bench.numbers[number], limit))


def _windows(run: Limited) -> str:
    """A limited run's windows over the limit and busiest share, at the simulator and on the wire."""
    wire = "not captured (no tcpdump)" if run.on_wire is None else (
        f"{run.on_wire.over} and {run.on_wire.busiest:.3f} on the wire")
    return (f"{run.at_sim.over} windows over it, the busiest second {run.at_sim.busiest:.3f} of it at the "
            f"simulator's clock; {wire}")


def measure_fairness(bench: Bench, slow: int, fast: int) -> float:
    """Two tenants' campaigns on one dispatcher: ``slow`` sends on the 80 msg/s number queued first, then ``fast`` on
    the 1,000 msg/s one; the fast campaign's ideal time (at the margin's rate) over the time it took from its queueing
    to its last send. Near 1: the slow number held the bulk workers it needed, no more. The last set-up: what is left
    of the slow campaign stays queued. With fewer than 500 of it in a partition ahead of the fast one the workers never
    all held slow sends, and with fewer than the dispatcher's bulk buffer the fast one's were read at once: the figure
    could not tell either bound."""
    bench.reset()
    with bench.dispatcher():
        interactive_latencies(bench, 5, 0.02)  # warm-up: the dispatcher has joined its group
        bench.produce("n80", slow)
        queued = time.time()
        bench.produce("n1000", fast)
        deadline = time.monotonic() + slow / 80 + 20  # bounded: an overloaded machine reports a low figure
        while len(times := bench.accepted_times("n1000")) < fast and time.monotonic() < deadline:
            time.sleep(0.2)
    took = max(times) - queued if len(times) >= fast else float("inf")
    ideal = fast / RATE_1000
    print(f"two campaigns: {fast} sends at 1,000 msg/s queued behind {slow} at 80 msg/s took {took:.1f} s "
          f"(ideal {ideal:.1f} s)", flush=True)
    return ideal / took


def interactive_latencies(bench: Bench, count: int, spacing_s: float,
                          produced: dict[str, float] | None = None) -> list[float]:
    """Produce interactive requests one by one, ``spacing_s`` apart on average; milliseconds from produce to result.
    ``produced`` collects each request's recipient and when it was produced (wall clock), for ``accept_latencies``.

    The spacing varies (half to one and a half times ``spacing_s``, seeded): at a fixed 20 ms the requests kept step
    with the dispatcher's fetches (the embedded broker answers an idle one about every 20 ms), so one run's p99 sampled
    one phase of them: idle p99 18.5-19.3 ms in some runs and 25.7-27.3 in others, same code."""
    spacing = random.Random(count)  # noqa: S311 - timing jitter, not a secret
    consumer = Consumer({"bootstrap.servers": bench.stack.kafka, "group.id": f"bench-{uuid.uuid4().hex}",
                         "fetch.wait.max.ms": 5,
                         "log_level": 3, "enable.auto.commit": False})
    topic = OUTBOUND_RESULTS.name
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
    consumer.poll(1.0)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    give_up = time.monotonic() + INTERACTIVE_MAX_S  # an overloaded dispatcher: fewer samples, never a hang
    try:
        for i in range(count):
            if time.monotonic() > give_up:
                break
            wall = time.time()
            (message_id,) = bench.produce("n1000", 1, lane="interactive", prefix=f"i{i}-")
            sent[message_id] = time.monotonic()
            if produced is not None:
                produced[bench.recipient()] = wall
            deadline = time.monotonic() + spacing_s * spacing.uniform(0.5, 1.5)
            while (time.monotonic() < deadline or len(latencies) < i + 1 - 5) and time.monotonic() < give_up:
                msg = consumer.poll(0.005)
                if msg is not None and not msg.error() and (value := msg.value()):
                    key = value.split(b'"message_id":"', 1)[1].split(b'"', 1)[0].decode()
                    if key in sent:
                        latencies.append((time.monotonic() - sent.pop(key)) * 1000)
        deadline = time.monotonic() + 30
        while sent and time.monotonic() < deadline:
            msg = consumer.poll(0.05)
            if msg is not None and not msg.error() and (value := msg.value()):
                key = value.split(b'"message_id":"', 1)[1].split(b'"', 1)[0].decode()
                if key in sent:
                    latencies.append((time.monotonic() - sent.pop(key)) * 1000)
    finally:
        consumer.close()
    return latencies


def accept_latencies(accepted: list[dict[str, Any]], produced: dict[str, float]) -> list[float]:
    """Milliseconds from produce to the simulator's accepting the send (Meta's side of the reply), per request of
    ``produced`` among the ``accepted`` sends: the reply's way without the result's way back through the broker."""
    return [(e["time"] - produced[to]) * 1000 for e in accepted if (to := (e.get("body") or {}).get("to")) in produced]


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else float("nan")


@dataclass(frozen=True)
class Lanes:
    """Interactive produce→result milliseconds, idle and behind the backlog, and the bulk lane's rate meanwhile as a
    share of what the replies leave it of the number's (``bulk_kept``: near 1 when the replies take only their own
    slots, 0 when they stop the campaign)."""

    idle: list[float]
    busy: list[float]
    bulk_kept: float
    idle_accept: list[float]  # the same replies, produce → accepted at the simulator
    busy_accept: list[float]
    over: int  # sliding 1-second windows of the number's sends (replies and bulk) above its limit
    on_wire: Windows | None  # the same on the wire (``bench.wire``; None: not captured)

    def line(self, prefix: str = "") -> str:
        figures = {"interactive_p99_idle_ms": f"{p99(self.idle):.1f}",
                   "interactive_p99_bulk_ms": f"{p99(self.busy):.1f}",
                   "bulk_idle_ratio": f"{_ratio(p99(self.busy), p99(self.idle)):.2f}",
                   "bulk_kept": f"{self.bulk_kept:.2f}", "accept_p99_idle_ms": f"{p99(self.idle_accept):.1f}",
                   "accept_p99_bulk_ms": f"{p99(self.busy_accept):.1f}",
                   "accept_ratio": f"{_ratio(p99(self.busy_accept), p99(self.idle_accept)):.2f}",
                   "lanes_over_limit_windows": str(self.over),
                   "lanes_wire_over_limit_windows": wire_over([self.on_wire])}
        return " ".join(f"{prefix}{name}={value}" for name, value in figures.items())


def measure_lanes(bench: Bench, bulk: int, count: int) -> str:
    """Set-up 3 with one dispatcher sending both lanes, then with a second for the interactive lane alone (the
    figures prefixed ``split_``): the RESULT line's part."""
    lanes = measure_interactive(bench, bulk, count)
    print("the same with the interactive lane in a dispatcher of its own (--scale replies=1):", flush=True)
    split = measure_interactive(bench, bulk, count, replies=1)
    return f"{lanes.line()} {split.line('split_')}"


def measure_interactive(bench: Bench, bulk: int, count: int, *, replies: int = 0) -> Lanes:
    """Interactive produce→result milliseconds on the 1,000 msg/s number: idle, then behind ``bulk`` bulk sends
    queued on the same number (how many of them were still queued when the last reply was answered is printed:
    with none left, the last replies were not measured behind a backlog), and the bulk sends meanwhile. With
    ``replies``, the interactive lane has that many dispatchers of its own (``--scale replies=N``)."""
    bench.reset()
    with capture(bench.stack.metasim_port) as wire, bench.dispatcher(replies=replies):
        warm = interactive_latencies(bench, 10, 0.02)  # warm-up: the dispatcher has joined its group
        produced_idle: dict[str, float] = {}
        idle = interactive_latencies(bench, count, 0.02, produced_idle)
        print(f"interactive idle: p50 {statistics.median(idle):.1f} ms p99 {p99(idle):.1f} ms", flush=True)
        bench.produce("n1000", bulk)
        began = time.time()
        produced_busy: dict[str, float] = {}
        busy = interactive_latencies(bench, count, 0.02, produced_busy)
        ended = time.time()
        left = bulk - (bench.accepted() - len(warm) - len(idle) - len(busy))
        print(f"interactive behind {bulk} bulk: p50 {statistics.median(busy):.1f} ms p99 {p99(busy):.1f} ms "
              f"({len(busy)} replies; bulk_left={max(left, 0)} at the end)", flush=True)
        # What is left is sent before the dispatcher stops, so the number's windows over its limit
        # (``lanes_over_limit_windows``) cover the backlog to its end. (It once also kept the next set-up's dispatcher
        # from reading it first; each set-up now starts on an empty broker, ``Bench.fresh_broker``.)
        wait_accepted(bench, bulk + len(warm) + len(idle) + len(busy), timeout=max(left, 0) / 900 + 20)
    seconds = ended - began
    accepted = bench.accepted_sends("n1000")  # one read of the simulator's log for the rate and the replies
    sent = sum(began <= e["time"] <= ended for e in accepted) - len(busy)
    room = RATE_1000 - len(busy) / seconds
    print(f"bulk while the replies came: {sent / seconds:.0f} sends/s, {sent / seconds / room:.2f} of the "
          f"{room:.0f}/s the replies leave", flush=True)
    idle_accept, busy_accept = accept_latencies(accepted, produced_idle), accept_latencies(accepted, produced_busy)
    print(f"the same replies, produce → accepted at the simulator: p99 {p99(idle_accept):.1f} ms idle, "
          f"{p99(busy_accept):.1f} ms behind the backlog", flush=True)
    over = over_limit_windows(sorted(e["time"] for e in accepted), 1000)
    return Lanes(idle, busy, sent / seconds / room, idle_accept, busy_accept, over,
                 wire_windows(wire, bench.numbers["n1000"], 1000))


def main(*, bulk: int = 20_000, max_count: int = 5_000, seconds: int = 5, interactive: int = 500,
         scale: dict[str, int] | None = None, interactive_only: bool = False,
         meta_latency_ms: float = META_LATENCY_MS) -> int:
    """The whole bench, or with ``interactive_only`` just the lane-priority measurement (about a minute)."""
    began = time.monotonic()
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)
    dispatchers = (scale or {}).get("dispatcher", 1)
    bench = Bench()
    try:
        bench.start()
        if interactive_only:
            lanes = measure_lanes(bench, bulk, interactive)
            print(f"wall {time.monotonic() - began:.0f}s", flush=True)
            print(f"RESULT dispatch {lanes}", flush=True)
            return 0
        same_sps, _ = measure_ceiling(bench, max_count)
        workers, connections = SMALL_POOL
        small_sps, _ = measure_ceiling(bench, max_count, workers=workers, connections=connections)
        pool = (workers, connections) if small_sps > same_sps else (CONCURRENCY, HTTP_CONNECTIONS)
        print(f"the ceiling's pool: {pool[0]} workers and {pool[1]} connections "
              f"({same_sps:.0f} sends/s from a bare aiohttp loop with the dispatcher's {CONCURRENCY} workers and "
              f"{HTTP_CONNECTIONS} connections, {small_sps:.0f} with {workers} and {connections}; up to {max_count} "
              f"sends, {CEILING_MAX_S:.0f} s at most)", flush=True)
        httpx_sps, httpx_cpu = measure_ceiling(bench, max_count, "httpx", workers=workers, connections=connections)
        print(f"the same loop on httpx: {httpx_sps:.0f} sends/s, {httpx_cpu:.2f} CPU ms per send", flush=True)
        offs = limits_off_rounds(bench, max_count, pool)
        ceiling_sps, ceiling_cpu, max_sps, max_cpu = (statistics.median(r[i] for r in offs) for i in range(4))
        ratios = [_ratio(r[2], r[0]) for r in offs]
        print(f"limits off (medians of {len(offs)} rounds): {max_sps:.0f} sends/s from one dispatcher against the "
              f"ceiling's {ceiling_sps:.0f}, {statistics.median(ratios):.3f} (rounds: "
              f"{', '.join(f'{r:.3f}' for r in ratios)}); {max_cpu:.2f} CPU ms per send against "
              f"{ceiling_cpu:.2f}", flush=True)
        relay_sps, relay_cpu = measure_relay(bench, max_count)
        print(f"the dispatcher's hop bare (Kafka in, the Graph call, the result out): {relay_sps:.0f} sends/s, "
              f"{relay_cpu:.2f} CPU ms per send; the dispatcher {_ratio(max_sps, relay_sps):.3f} of it", flush=True)
        scaled = ""
        if dispatchers > 1:
            max_sps_n, _ = measure_max(bench, max_count, dispatchers)
            print(f"limits off: {max_sps_n:.0f} sends/s from {dispatchers} dispatchers "
                  f"({_ratio(max_sps_n, max_sps):.2f}x one)", flush=True)
            scaled = f" max_sps_{dispatchers}={max_sps_n:.0f}"
        run80 = measure_limited(bench, "n80", 80, seconds)
        print(f"80 msg/s number: achieved {run80.rate:.3f} of the limit, {_windows(run80)}", flush=True)
        run1000 = measure_limited(bench, "n1000", 1000, seconds)
        print(f"1000 msg/s number: achieved {run1000.rate:.3f} of the limit, {_windows(run1000)}", flush=True)
        run_meta = measure_limited(bench, "n1000", 1000, seconds, meta_latency_ms)
        print(f"1000 msg/s number, Meta answering in {meta_latency_ms:.0f} ms: achieved {run_meta.rate:.3f} of the "
              f"limit, {_windows(run_meta)}", flush=True)
        runs = (run80, run1000, run_meta)
        lanes = measure_lanes(bench, bulk, interactive)
        fair = measure_fairness(bench, FAIR_SLOW, FAIR_FAST)
        print(f"wall {time.monotonic() - began:.0f}s", flush=True)
        print(f"RESULT dispatch max_sps={max_sps:.0f} ceiling_sps={ceiling_sps:.0f} "
              f"ratio={statistics.median(ratios):.3f} ratios={','.join(f'{r:.3f}' for r in ratios)}{scaled} "
              f"relay_sps={relay_sps:.0f} "
              f"relay_ratio={_ratio(max_sps, relay_sps):.3f} relay_cpu_ms_per_send={relay_cpu:.2f} "
              f"cpu_ms_per_send={max_cpu:.2f} "
              f"ceiling_cpu_ms_per_send={ceiling_cpu:.2f} cpu_ratio={_ratio(ceiling_cpu, max_cpu):.3f} "
              f"httpx_sps={httpx_sps:.0f} httpx_cpu_ms_per_send={httpx_cpu:.2f} "
              f"rate80={run80.rate:.3f} rate1000={run1000.rate:.3f} rate1000_meta={run_meta.rate:.3f} "
              f"over_limit_windows={sum(r.at_sim.over for r in runs)} "
              f"wire_over_limit_windows={wire_over(r.on_wire for r in runs)} "
              f"busiest_share={max(r.at_sim.busiest for r in runs):.3f} {lanes} fair_ratio={fair:.2f}",
              flush=True)
        return 0
    finally:
        bench.stop()
