"""In memory, from the feed's one consumer to every browser: entries, the ring of recent ones, and each
browser's bounded queue.

An ``Entry`` is one event with its place in Kafka (slot, offset), the cursor after it (``vector``) and its
SSE frame, serialised once for every browser. A ``Client`` is one open stream: its tenant and role, a
queue of at most ``live_queue_events`` entries (a browser that falls that far behind is cut off, so it
never slows the others; it reconnects with ``Last-Event-ID`` and catches up), and its own cursor, which
only moves forward: an entry below it was delivered already (a resume's overlap) and is skipped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from api.live.cursor import Layout
from api.live.events import ADMIN_ONLY

PING = b": ping\n"


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of the feed: where it is in Kafka, the cursor after it, and its frame."""

    slot: int
    offset: int
    tenant_id: str
    type: str
    vector: tuple[int, ...]
    cursor: str
    payload: bytes  # the event's JSON without its id: {"type":…,"at":…,"conversation_key":…,"data":…}
    frame: bytes = field(default=b"")

    @classmethod
    def build(cls, slot: int, offset: int, tenant_id: str, type_: str, vector: tuple[int, ...], cursor: str,
              payload: bytes) -> Entry:
        return cls(slot, offset, tenant_id, type_, vector, cursor, payload, frame(cursor, payload))


def frame(cursor: str, payload: bytes) -> bytes:
    """The SSE frame of an event: its ``id:`` line and one ``data:`` line holding the event with that id."""
    ident = cursor.encode()
    return b"id: " + ident + b'\ndata: {"id":"' + ident + b'",' + payload[1:] + b"\n\n"


def dominates(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Is ``a`` at or past ``b`` in every slot?"""
    return all(x >= y for x, y in zip(a, b, strict=True))


def merged(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(max(x, y) for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class Ping:
    """A heartbeat queued behind the entries before it: the feed's position when it was queued."""

    vector: tuple[int, ...]


class Client:
    """One open stream of one browser."""

    def __init__(self, layout: Layout, tenant_id: str, role: str, start: tuple[int, ...], max_queue: int) -> None:
        self.layout = layout
        self.tenant_id = tenant_id
        self.admin = role == "admin"
        self.pos = start
        self.synced = False
        self.queue: asyncio.Queue[Entry | Ping] = asyncio.Queue(max_queue)
        self.cut = asyncio.Event()  # set when the stream must end (its queue overflowed, or the feed stopped)
        self.cut_reason = ""

    def wants(self, entry: Entry) -> bool:
        return entry.tenant_id == self.tenant_id and (self.admin or entry.type not in ADMIN_ONLY)

    def offer(self, item: Entry | Ping) -> bool:
        """Queue ``item``; False (and the stream is cut) when the browser has too many waiting."""
        if self.cut.is_set():
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.close("slow client: too many events waiting")
            return False
        return True

    def close(self, reason: str) -> None:
        self.cut_reason = self.cut_reason or reason
        self.cut.set()

    def render(self, item: Entry | Ping) -> bytes | None:
        """The bytes that deliver ``item`` to this browser (None: delivered already), moving its cursor."""
        if isinstance(item, Ping):
            if dominates(self.pos, item.vector):
                return PING + b"\n"
            self.synced = self.synced or dominates(item.vector, self.pos)
            self.pos = merged(self.pos, item.vector)
            return PING + b"id: " + self.layout.encode(self.pos).encode() + b"\n\n"
        if item.offset < self.pos[item.slot]:
            return None
        if self.synced or dominates(item.vector, self.pos):
            self.pos, self.synced = item.vector, True
            return item.frame
        # Resumed from a cursor that is ahead of this process in another slot: never hand out a lower one.
        self.pos = merged(self.pos, item.vector)
        return frame(self.layout.encode(self.pos), item.payload)

    def skip_to(self, vector: tuple[int, ...]) -> None:
        """Everything of this browser's below ``vector`` was delivered (a resume read the gap up to it)."""
        self.pos = merged(self.pos, vector)


class Ring:
    """The most recent entries (at most ``size``), and the floor below which it no longer holds them."""

    def __init__(self, size: int, floor: tuple[int, ...]) -> None:
        self.size = size
        self.entries: deque[Entry] = deque()
        self.floor = list(floor)

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)
        if len(self.entries) > self.size:
            old = self.entries.popleft()
            if old.offset + 1 > self.floor[old.slot]:
                self.floor[old.slot] = old.offset + 1

    def since(self, client: Client, start: tuple[int, ...]) -> list[Entry]:
        """The client's entries at or past ``start`` (in feed order)."""
        return [e for e in self.entries if e.offset >= start[e.slot] and client.wants(e)]

    def covers(self, start: tuple[int, ...]) -> bool:
        return dominates(start, tuple(self.floor))

    def gap(self, start: tuple[int, ...]) -> int:
        """How many records lie between ``start`` and the floor (to read from Kafka to resume)."""
        return sum(max(0, f - s) for f, s in zip(self.floor, start, strict=True))


def fan_out(items: list[Entry] | Ping, clients: Iterable[Client]) -> list[Client]:
    """Queue the entries (or a heartbeat) for each of ``clients`` that may see them; return those cut off."""
    cut: list[Client] = []
    for client in clients:
        if isinstance(items, Ping):
            if not client.offer(items):
                cut.append(client)
            continue
        for entry in items:
            if client.wants(entry) and not client.offer(entry):
                cut.append(client)
                break
    return cut
