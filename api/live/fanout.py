"""In memory, from the feed's one consumer to every browser: entries, the ring of recent ones, and each
browser's bounded queue.

An ``Entry`` is one event with its place in Kafka (slot, offset), the cursor after it (``vector``) and its
SSE frame, serialised once for every browser. A ``Batch`` is what one hand-over of the consumer holds for
one tenant and role: its entries and their frames joined once, so the streams of that tenant and role are
each offered one item per hand-over, not one per event. A ``Client`` is one open stream: its tenant and
role, the items waiting for it (at most ``live_queue_events`` events: a browser that falls that far behind
is cut off, so it never slows the others; it reconnects with ``Last-Event-ID`` and catches up), and its own
cursor, which only moves forward: an entry below it was delivered already (a resume's overlap) and is
skipped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
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


@dataclass(frozen=True, slots=True)
class Batch:
    """One hand-over's entries for the streams of one tenant and role, their frames joined once."""

    seq: int  # the hand-over's number: the feed's position only grows from one to the next
    before: tuple[int, ...]  # the feed's position before these entries: each one's offset is at or past it
    after: tuple[int, ...]  # the feed's position after them
    entries: tuple[Entry, ...]
    frames: bytes

    @classmethod
    def of(cls, seq: int, before: tuple[int, ...], after: tuple[int, ...], entries: Sequence[Entry]) -> Batch:
        return cls(seq, before, after, tuple(entries), b"".join(e.frame for e in entries))


Item = Entry | Batch | Ping


class Client:
    """One open stream of one browser."""

    def __init__(self, layout: Layout, tenant_id: str, role: str, start: tuple[int, ...], max_queue: int) -> None:
        self.layout = layout
        self.tenant_id = tenant_id
        self.admin = role == "admin"
        self.pos = start
        self.synced = False
        self.below = -1  # a hand-over whose feed position ``pos`` is known to be at or below (-1: none yet)
        self.max_queue = max_queue
        self.pending: deque[Item] = deque()  # what the stream's writer has yet to send, in feed order
        self.waiting = 0  # events in ``pending`` (a heartbeat counts as one)
        self.more = asyncio.Event()  # set when ``pending`` got something
        self.cut = asyncio.Event()  # set when the stream must end (too many events waiting, or the feed stopped)
        self.cut_reason = ""

    def wants(self, entry: Entry) -> bool:
        return entry.tenant_id == self.tenant_id and (self.admin or entry.type not in ADMIN_ONLY)

    def offer(self, item: Item) -> bool:
        """Queue ``item``; False (and the stream is cut) when the browser would have too many events waiting."""
        if self.cut.is_set():
            return False
        size = len(item.entries) if isinstance(item, Batch) else 1
        if self.waiting + size > self.max_queue:
            self.close("slow client: too many events waiting")
            return False
        self.pending.append(item)
        self.waiting += size
        self.more.set()
        return True

    def take(self) -> list[Item]:
        """Everything waiting (at most ``max_queue`` events), oldest first; the writer sends it in one go."""
        items = list(self.pending)
        self.pending.clear()
        self.waiting = 0
        self.more.clear()
        return items

    def close(self, reason: str) -> None:
        self.cut_reason = self.cut_reason or reason
        self.cut.set()

    def render(self, item: Item) -> bytes | None:
        """The bytes that deliver ``item`` to this browser (None: delivered already), moving its cursor."""
        if isinstance(item, Batch):
            if self.synced and 0 <= self.below < item.seq:
                # ``pos`` is at or below a position the batch starts past (the feed's only grows), so nothing of it
                # was delivered and each entry's cursor is past the last: its joined frames, as they are.
                self.pos, self.below = item.entries[-1].vector, item.seq
                return item.frames
            parts = [f for f in (self.render(e) for e in item.entries) if f is not None]
            if self.synced and dominates(item.after, self.pos):
                self.below = item.seq
            return b"".join(parts) if parts else None
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


def batches(seq: int, before: tuple[int, ...], after: tuple[int, ...],
            entries: Sequence[Entry]) -> dict[tuple[str, bool], Batch]:
    """Hand-over ``seq``'s entries as a batch per tenant and role (admin True/False), each built once; a role
    with nothing to see has none."""
    by_tenant: dict[str, list[Entry]] = {}
    for entry in entries:
        by_tenant.setdefault(entry.tenant_id, []).append(entry)
    out: dict[tuple[str, bool], Batch] = {}
    for tenant, mine in by_tenant.items():
        out[(tenant, True)] = admin = Batch.of(seq, before, after, mine)
        visible = [e for e in mine if e.type not in ADMIN_ONLY]
        if len(visible) == len(mine):
            out[(tenant, False)] = admin
        elif visible:
            out[(tenant, False)] = Batch.of(seq, before, after, visible)
    return out


def fan_out(item: Batch | Ping, clients: Iterable[Client]) -> list[Client]:
    """Queue one batch (or a heartbeat) for each of ``clients``; return those cut off."""
    return [client for client in clients if not client.offer(item)]
