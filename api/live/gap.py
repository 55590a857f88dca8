"""Reading a resume's gap from Kafka: the records between a browser's cursor and the ring's floor.

When a browser resumes from a cursor older than the ring (it was away long, or the web process restarted),
a short-lived consumer assigned to the missing ranges reads them (no group, nothing committed), keeping the
browser's tenant's events it may see. It is bounded: at most ``live_gap_max_records`` records and
``GAP_TIMEOUT_S``; beyond either, the stream sends a ``reset`` event instead (the page reloads its state).
Each event's id advances only its own slot of the cursor, so a stream cut during the gap resumes exactly.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from api.live.cursor import Layout
from api.live.fanout import Client, Entry
from api.live.hub import Decoder
from broker.consumer import reader_config
from config.settings import IngressSettings

GAP_TIMEOUT_S = 10.0


class GapTooLong(Exception):
    """The gap could not be read within the bounds."""


def read_gap(settings: IngressSettings, layout: Layout, client: Client, start: tuple[int, ...],
             end: tuple[int, ...]) -> list[Entry]:
    """The client's entries in ``[start, end)`` of every slot, each with a cursor valid for it. Blocking."""
    wanted = {i: (s, e) for i, (s, e) in enumerate(zip(start, end, strict=True)) if s < e}
    if not wanted:
        return []
    if sum(e - s for s, e in wanted.values()) > settings.live_gap_max_records:
        raise GapTooLong("the gap is longer than the feed reads back")
    consumer = Consumer(reader_config(settings, fetch_wait_max_ms=settings.live_fetch_wait_ms))
    decoder = Decoder(layout, settings.topic_prefix)
    vector = list(start)
    found: list[Entry] = []
    try:
        consumer.assign([TopicPartition(settings.topic_prefix + layout.slots[i][0], layout.slots[i][1], s)
                         for i, (s, _) in wanted.items()])
        deadline = time.monotonic() + GAP_TIMEOUT_S
        pending = set(wanted)
        while pending:
            if time.monotonic() > deadline:
                raise GapTooLong("reading the gap from Kafka took too long")
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            slot = decoder.slot(msg)
            offset = msg.offset() or 0
            if slot not in pending or offset >= wanted[slot][1]:
                continue
            vector[slot] = offset + 1
            entry = decoder.entry(msg, slot, tuple(vector))
            if entry is not None and client.wants(entry):
                found.append(entry)
            if offset + 1 >= wanted[slot][1]:
                pending.discard(slot)
    finally:
        consumer.close()
    return found
