"""``python -m bench.broker_history``: does the embedded broker's CPU grow with what a topic holds?

Tansu 0.6.0 with in-memory storage answers a fetch that finds new data by listing every stored batch of the
partition (``tansu-storage/src/dynostore.rs``, ``fetch``), so at a steady rate its CPU grows with the topic's
history; a fetch at the end (no new data) lists nothing. Apache Kafka finds an offset through its index.

Two runs on a fresh broker each, producing ``--rate`` records a second into one topic of 6 partitions for
``--windows`` windows of 10 s: with one reader fetching every partition (a 250 ms wait), then with no reader.
Prints the broker's CPU per window and
``RESULT broker_history rate=… first_pct=… last_pct=… growth=… no_reader_first_pct=… no_reader_last_pct=…``
(``growth``: last window over first, with the reader).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stack.services import start_broker

TOPIC = "history"
PARTITIONS = 6
WINDOW_S = 10.0
PAYLOAD = b"x" * 600  # about a webhook record's size


def _read(bootstrap: str, stop: threading.Event) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 250, "log_level": 3})
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    try:
        while not stop.is_set():
            consumer.consume(500, 0.2)
    finally:
        consumer.close()


def run(rate: int, windows: int, reader: bool) -> list[float]:
    """The broker's CPU (% of one core) in each window."""
    with tempfile.TemporaryDirectory(prefix="aerostic-broker-history-") as logs:
        broker = start_broker(Path(logs))
        stop = threading.Event()
        thread = threading.Thread(target=_read, args=(broker.url, stop), daemon=True)
        admin = AdminClient({"bootstrap.servers": broker.url, "log_level": 3})
        producer = Producer({"bootstrap.servers": broker.url, "linger.ms": 2, "log_level": 3})
        try:
            for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
                future.result()
            if reader:
                thread.start()
            process = psutil.Process(broker.child.pid)
            shares, sent, began = [], 0, time.monotonic()
            for window in range(windows):
                cpu, start = sum(process.cpu_times()[:2]), time.monotonic()
                while time.monotonic() - start < WINDOW_S:
                    due = int((time.monotonic() - began) * rate)
                    for _ in range(due - sent):
                        producer.produce(TOPIC, PAYLOAD, key=str(sent).encode())
                        sent += 1
                    producer.poll(0.005)
                shares.append((sum(process.cpu_times()[:2]) - cpu) / (time.monotonic() - start) * 100)
                print(f"{'reader' if reader else 'no reader'}, window {window}: {sent} records produced, "
                      f"broker {shares[-1]:.0f}% of a core", flush=True)
            producer.flush(10)
            return shares
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(5)
            del admin, producer  # librdkafka's clients go before their broker (no reconnect noise)
            broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=int, default=300, help="records produced a second")
    parser.add_argument("--windows", type=int, default=8, help="windows of 10 s per run")
    args = parser.parse_args(argv)
    read = run(args.rate, args.windows, reader=True)
    alone = run(args.rate, args.windows, reader=False)
    growth = read[-1] / read[0] if read[0] else float("nan")
    print(f"RESULT broker_history rate={args.rate} first_pct={read[0]:.1f} last_pct={read[-1]:.1f} "
          f"growth={growth:.2f} no_reader_first_pct={alone[0]:.1f} no_reader_last_pct={alone[-1]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
