"""``aerostic bench ingress``: webhook throughput and latency against a bare-uvicorn ceiling.

Starts a Tansu broker with the catalogue's topics and two servers, then loads them in turn with the
same signed webhook requests from a separate load-generator process (``bench.loadgen``):

- the ceiling: ``bare_app`` below (read the body, answer 200) on uvicorn + uvloop + httptools;
- Aerostic's ingress (``aerostic ingress``), which verifies, parses and appends to Kafka.

The two alternate for ``rounds`` rounds (five by default; the ceiling first in the first round, the ingress in the
second …): on a shared machine both serve a quarter
more or less from one minute to the next (measured: the ceiling 19,300-29,100 requests a second within four
minutes), so one run of each compared a fast spell with a slow one. Each round gives a ratio; the ``RESULT``
line has their median, with the medians of the rounds' figures.

Prints a table (a row per server and round) and one ``RESULT`` line; exits 1 when an ingress round had more than
1 % errors.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import psutil

from bench.loadgen import WINDOW_END, WINDOW_START, LoadResult, LoadRun, build_request
from bench.rounds import in_turn
from ingress.signature import sign
from ingress.webhook import PATH, Receive, Scope, Send
from stack.launcher import EMBEDDED_MAX_PARTITIONS
from stack.processes import Child, free_port, port_open, wait_until
from stack.services import Service, start_broker
from stack.topics import create_topics

# An editable install: this file sits in the checkout, so the repository root is found from it.
REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS = REPO_ROOT / "tests" / "data" / "meta" / "webhooks"
BODY_COUNT = 50
MAX_ERROR_RATIO = 0.01
_BARE_BODY = b'{"ok":true}'
_BARE_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BARE_BODY)).encode())]


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ceiling: read the whole request body, answer 200 with a tiny JSON body."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _BARE_HEADERS})
    await send({"type": "http.response.body", "body": _BARE_BODY})


@dataclass(frozen=True)
class Measurement:
    """One target's load result plus the CPU each process used during the measured window."""

    name: str
    load: LoadResult
    cpu_percent: dict[str, float]


# --- request bodies -------------------------------------------------------------------------


def _text_envelope(i: int) -> dict[str, Any]:
    """A built-in inbound text-message webhook, made distinct by ``i``."""
    wa_id = f"1650555{i:04d}"
    message = {"from": wa_id, "id": f"wamid.bench{i:06d}", "timestamp": str(1744344496 + i),
               "type": "text", "text": {"body": f"benchmark message {i}"}}
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
             "contacts": [{"profile": {"name": f"Bench {i}"}, "wa_id": wa_id}], "messages": [message]}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "419561257915477", "changes": [{"value": value, "field": "messages"}]}]}


def _vector_documents(folder: Path, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` webhook envelopes from ``folder``, evenly spread over its sorted files."""
    if not folder.is_dir():
        raise FileNotFoundError(f"webhook vectors not found at {folder}: the ingress benchmark reads Meta's test "
                                "vectors from the repository (tests/data/meta/webhooks), so it needs a source "
                                "checkout installed in editable mode (pip install -e .)")
    files = sorted(folder.glob("*.json"))
    docs = [doc for doc in (json.loads(p.read_text()) for p in files) if isinstance(doc, dict)]
    if len(docs) <= count:
        return docs
    return [docs[i * len(docs) // count] for i in range(count)]


def load_bodies(folder: Path = VECTORS, count: int = BODY_COUNT) -> list[bytes]:
    """``count`` compact, ASCII-only JSON bodies (the vectors, else built-in text messages).

    Raises ``FileNotFoundError`` when ``folder`` does not exist.
    """
    docs = _vector_documents(folder, count) or [_text_envelope(i) for i in range(count)]
    bodies = [json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode() for doc in docs]
    return [bodies[i % len(bodies)] for i in range(count)]


def build_requests(secret: str, bodies: list[bytes]) -> list[bytes]:
    """Each body as a full signed ``POST /webhooks/meta`` request."""
    key = secret.encode()
    return [build_request(body, sign(body, key), PATH) for body in bodies]


# --- targets --------------------------------------------------------------------------------


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a server child: ours, the repo on the path, plus ``extra``."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def _healthy(port: int) -> bool:
    """True when the ingress answers ``GET /healthz`` with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


START_TIMEOUT_S = 120.0  # importing the web app takes over 30 s on a loaded machine (as the stack's launcher allows)


def _start(child: Child, ready: Callable[[], bool], what: str) -> Child:
    """Start ``child`` and wait until ``ready``; raise with its log tail if it dies first."""
    child.start()
    wait_until(lambda: ready() or not child.alive(), timeout=START_TIMEOUT_S, what=what, interval=0.1)
    if not child.alive():
        raise RuntimeError(f"{what} exited:\n{child.tail()}")
    return child


def start_bare(root: Path, port: int) -> Child:
    """The ceiling server: ``bare_app`` on uvicorn with uvloop and httptools."""
    argv = [sys.executable, "-m", "uvicorn", "bench.ingress:bare_app", "--app-dir", str(REPO_ROOT),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]
    child = Child("bare", argv, log_dir=root / "logs", env=_child_env({}), cwd=root)
    return _start(child, lambda: port_open(port), "bare app")


def start_ingress(root: Path, port: int, bootstrap: str, secret: str) -> Child:
    """Aerostic's ingress process against ``bootstrap``, accepting ``secret``."""
    argv = [sys.executable, "-m", "aerostic", "ingress", "--host", "127.0.0.1", "--port", str(port)]
    env = _child_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "AEROSTIC_APP_SECRETS": secret,
                      "AEROSTIC_TOPIC_PREFIX": "", "AEROSTIC_ENVIRONMENT": "development"})
    child = Child("ingress", argv, log_dir=root / "logs", env=env, cwd=root)
    return _start(child, lambda: _healthy(port), "ingress")


# --- measuring ------------------------------------------------------------------------------


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds used so far by each named process (0.0 if it is gone)."""
    used: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            times = psutil.Process(pid).cpu_times()
            used[name] = times.user + times.system
        except psutil.Error:
            used[name] = 0.0
    return used


def measure(name: str, port: int, requests: list[bytes], *, connections: int, duration: float,
            watch: dict[str, int]) -> Measurement:
    """Load ``port`` and sample the CPU of the ``watch`` processes over the measured window."""
    run = LoadRun(port, requests, connections=connections, duration=duration)
    try:
        run.expect(WINDOW_START)
        before, wall = _cpu_seconds(watch), time.perf_counter()
        run.expect(WINDOW_END)
        after, wall = _cpu_seconds(watch), time.perf_counter() - wall
        load = run.result()
    finally:
        run.close()
    cpu = {key: 100 * (after[key] - before[key]) / wall for key in watch}
    cpu["loadgen"] = 100 * load.cpu_seconds / load.duration
    return Measurement(name, load, cpu)


@contextmanager
def running(child: Child) -> Iterator[Child]:
    """Stop ``child`` when the block ends, however it ends."""
    try:
        yield child
    finally:
        child.stop()


def bench_rounds(root: Path, broker: Service, secret: str, requests: list[bytes], connections: int,
                 duration: float, rounds: int) -> list[tuple[Measurement, Measurement]]:
    """``rounds`` rounds of the ceiling and the ingress, the ceiling first in the first round, the ingress first in the
    second … (the broker's CPU sampled with the ingress), both servers up throughout."""
    bare_port, ingress_port = free_port(), free_port()
    with running(start_bare(root, bare_port)) as bare, \
            running(start_ingress(root, ingress_port, broker.url, secret)) as ingress:
        def ceiling() -> Measurement:
            return measure("bare uvicorn", bare_port, requests, connections=connections, duration=duration,
                           watch={"server": bare.pid})

        def aerostic() -> Measurement:
            return measure("aerostic ingress", ingress_port, requests, connections=connections, duration=duration,
                           watch={"server": ingress.pid, "broker": broker.child.pid})

        return in_turn(ceiling, aerostic, rounds)


# --- report ---------------------------------------------------------------------------------


def _row(m: Measurement, connections: int) -> str:
    """One table line."""
    load, cpu = m.load, m.cpu_percent
    cpu_text = " ".join(f"{key}={value:.0f}%" for key, value in cpu.items())
    return (f"{m.name:<18} {connections:>5} {load.rps:>9.0f} {load.p50_ms:>8.2f} {load.p99_ms:>8.2f} "
            f"{load.errors:>7}  {cpu_text}")


def report(pairs: list[tuple[Measurement, Measurement]], connections: int, duration: float) -> str:
    """The table (each round's two rows) and the final ``RESULT`` line: medians over the rounds."""
    ratios = [aerostic.load.rps / ceiling.load.rps if ceiling.load.rps else 0.0 for ceiling, aerostic in pairs]
    runs = [aerostic.load for _, aerostic in pairs]
    lines = [
        f"ingress benchmark: {len(pairs)} rounds of {duration:g}s measured after 1s warm-up each, "
        f"{os.cpu_count()} CPUs",
        f"{'target':<18} {'conns':>5} {'rps':>9} {'p50_ms':>8} {'p99_ms':>8} {'errors':>7}  cpu (window)",
    ]
    for (ceiling, aerostic), ratio in zip(pairs, ratios, strict=True):
        lines += [_row(ceiling, connections), _row(aerostic, connections) + f"  ratio={ratio:.3f}"]
    lines.append(
        f"RESULT ingress rps={median(r.rps for r in runs):.0f} p50_ms={median(r.p50_ms for r in runs):.2f} "
        f"p99_ms={median(r.p99_ms for r in runs):.2f} ceiling_rps={median(c.load.rps for c, _ in pairs):.0f} "
        f"ratio={median(ratios):.3f} rounds={len(pairs)} ratios={','.join(f'{r:.3f}' for r in ratios)}")
    return "\n".join(lines)


def main(duration: float, connections: int, rounds: int) -> int:
    """Run the alternated rounds, print the report; 1 when an ingress round had more than 1 % errors."""
    secret = secrets.token_hex(32)
    try:
        bodies = load_bodies()
    except FileNotFoundError as exc:
        print(f"aerostic bench ingress: {exc}", file=sys.stderr, flush=True)
        return 2
    requests = build_requests(secret, bodies)
    with tempfile.TemporaryDirectory(prefix="aerostic-bench-") as tmp:
        root = Path(tmp)
        broker = start_broker(root / "logs")
        try:
            create_topics(broker.url, max_partitions=EMBEDDED_MAX_PARTITIONS)
            pairs = bench_rounds(root, broker, secret, requests, connections, duration, max(1, rounds))
        finally:
            broker.stop()
    print(report(pairs, connections, duration), flush=True)
    return 1 if any(aerostic.load.error_ratio > MAX_ERROR_RATIO for _, aerostic in pairs) else 0
