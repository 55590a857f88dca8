"""``python -m bench.idle_consumers``: what one idle consumer group costs the embedded broker a second.

Tansu answers a waiting fetch only when its ``fetch.wait.max.ms`` runs out, so every consumer with nothing to
read polls it at that pace (``broker.consumer``). For each ``--waits`` value, on a fresh broker with two topics of
two partitions (the local stack's ``EMBEDDED_MAX_PARTITIONS``), consumers configured as the pipeline's
(``consumer_config``: its heartbeats, its assignor), each of a group of its own, are added up to
each of ``--counts``, and the broker's CPU is read over ``--seconds`` once they all have their partitions. Prints a
line per step and ``RESULT idle_consumers wait_<ms>_ms_per_s=… …`` (per wait: the broker's CPU milliseconds a
second per idle consumer, the slope of a least-squares line through the steps, none included). About a minute a
wait at the defaults.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
from confluent_kafka import Consumer

from bench.relay import create_topics
from broker.consumer import consumer_config
from config.settings import CoreSettings
from stack.launcher import EMBEDDED_MAX_PARTITIONS
from stack.services import start_broker

TOPICS = ("idle-a", "idle-b")
ASSIGN_TIMEOUT_S = 60.0
SETTLE_S = 2.0  # after the last join, before reading: the group's rebalance traffic is over
MAX_CONSUMERS = 32  # each is a thread with its own connection and group
MAX_WAITS = 6


def slope(points: Sequence[tuple[int, float]]) -> float:
    """The least-squares slope of ``(consumers, ms a second)`` points: the broker's cost per idle consumer (NaN with
    fewer than two counts)."""
    try:
        return statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope
    except statistics.StatisticsError:
        return float("nan")


def _consume(settings: CoreSettings, group: str, wait_ms: int, assigned: threading.Event,
             stop: threading.Event) -> None:
    """A consumer configured as the pipeline's groups are (``broker.consumer.consumer_config``), reading nothing."""
    consumer = Consumer(consumer_config(settings, group, fetch_wait_max_ms=wait_ms))
    consumer.subscribe(list(TOPICS), on_assign=lambda *_: assigned.set())
    try:
        while not stop.is_set():
            consumer.poll(0.2)
    finally:
        consumer.close()


def _cpu_ms_per_s(process: psutil.Process, seconds: float) -> float:
    before = process.cpu_times()
    time.sleep(seconds)  # the measurement window itself, not a synchronisation
    after = process.cpu_times()
    return (after.user + after.system - before.user - before.system) / seconds * 1000


def measure(wait_ms: int, counts: Sequence[int], seconds: float) -> list[tuple[int, float]]:
    """``(consumers, the broker's CPU ms a second)`` at rest with none, then with each of ``counts``."""
    broker = start_broker(Path(tempfile.mkdtemp(prefix="aerostic-idle-")))
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        create_topics(broker.url, list(TOPICS), EMBEDDED_MAX_PARTITIONS)
        settings = CoreSettings(environment="development", kafka_bootstrap_servers=broker.url)
        process = psutil.Process(broker.child.pid)
        points = [(0, _cpu_ms_per_s(process, seconds))]
        for count in counts:
            while len(threads) < count:
                assigned = threading.Event()
                thread = threading.Thread(target=_consume, args=(settings, f"idle-{len(threads)}", wait_ms,
                                                                 assigned, stop), daemon=True)
                thread.start()
                threads.append(thread)
                if not assigned.wait(ASSIGN_TIMEOUT_S):
                    raise RuntimeError(f"consumer {len(threads)} got no partitions in {ASSIGN_TIMEOUT_S:.0f} s")
            time.sleep(SETTLE_S)
            points.append((count, _cpu_ms_per_s(process, seconds)))
            print(f"wait {wait_ms} ms, {count} idle consumers: the broker {points[-1][1]:.1f} ms a second",
                  flush=True)
        return points
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_consumers")
    parser.add_argument("--waits", type=int, nargs="+", default=[40, 250], help="fetch.wait.max.ms values")
    parser.add_argument("--counts", type=int, nargs="+", default=[2, 4, 8], help="consumers at each step")
    parser.add_argument("--seconds", type=float, default=10.0, help="each step's measurement window")
    args = parser.parse_args(argv)
    if not all(1 <= c <= MAX_CONSUMERS for c in args.counts) or not 1 <= len(args.waits) <= MAX_WAITS \
            or not all(w > 0 for w in args.waits) or args.seconds <= 0:
        parser.error(f"--counts: 1 to {MAX_CONSUMERS} each; --waits: 1 to {MAX_WAITS} positive values; "
                     "--seconds: positive")
    per_consumer = {wait: slope(measure(wait, sorted(args.counts), args.seconds)) for wait in args.waits}
    print("RESULT idle_consumers " + " ".join(f"wait_{w}_ms_per_s={v:.1f}" for w, v in per_consumer.items()),
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
