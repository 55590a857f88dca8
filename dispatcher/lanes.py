"""Scheduling inside the dispatcher: conversation order, lane priority, delays.

``Scheduler`` keeps one FIFO per conversation and lets at most one of its requests be worked
on at a time (strict order within a conversation, many conversations in parallel). Ready
conversations whose head is interactive go first. A head that must wait (retry back-off, a
held account) parks its conversation on a timer. Which offsets may be committed is
``broker.offsets.OffsetTracker``'s business.

Idle workers wait in line, each on a future of its own, and a conversation made ready wakes one of them (a worker
that takes a request while more are ready wakes the next): not every worker at every change. With the dispatcher's
256 workers, one shared event woke all of them for each reply, each making a task and a timer for its wait (measured
at 40 replies a second: the dispatcher's CPU per reply 2.1-2.3 ms in line against 2.5-2.6). One timer, for the
earliest parked conversation, wakes as many as it releases.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from schemas.outbound import OutboundRequest

HOLDS_MAX = 10_000  # held numbers remembered; past it, those whose holds ended with no check under way are lifted


@dataclass(eq=False)
class Work:
    """One consumed request and where it came from."""

    request: OutboundRequest
    topic: str
    partition: int
    offset: int
    not_before: float = 0.0  # monotonic time

    @property
    def interactive(self) -> bool:
        return self.request.lane == "interactive"


class Scheduler:
    """Per-conversation FIFOs, one request in flight per conversation, interactive first.

    At most ``max_bulk`` bulk requests are worked on at once (default: no bound), so that the workers left
    over are always free for an interactive reply: it never waits for a bulk send to finish.

    ``number_cap(phone_number_id)`` bounds one number's requests of each lane worked on at once (default: no bound).
    A worker holds a request until its number's rate lets it go, so without the bound a campaign on an 80 msg/s number
    took every bulk worker, each waiting seconds for a slot, and another tenant's campaign on a 1,000 msg/s number
    sent nothing meanwhile (``bench dispatch``); a burst of replies on one number held every worker the same way, and
    other tenants' replies waited seconds. A conversation whose number is at its bound in its lane waits aside, in
    order, and goes back first in line when one of the number's requests of that lane finishes.

    A number whose account cannot send (``hold_number``) is held: one of its requests checks the account again when
    the hold ends, and its other conversations wait aside meanwhile, in both lanes, counted as waiting for room. Each
    held request checked again on its own (a read of PostgreSQL each), and they filled the bulk buffer: the dispatcher
    stopped reading bulk, and other tenants' campaigns behind them waited for the reconnection.
    """

    def __init__(self, *, max_bulk: int | None = None, number_cap: Callable[[str], int] | None = None) -> None:
        if max_bulk is not None and max_bulk < 1:
            raise ValueError("max_bulk must be at least 1")
        self.max_bulk = max_bulk
        self.number_cap = number_cap
        self.working_bulk = 0
        # Per lane (interactive: True), the requests worked on per number (none: absent), and the ready conversations
        # of a number at its bound.
        self._working_by_number: dict[bool, dict[str, int]] = {True: {}, False: {}}
        self._held: dict[bool, dict[str, deque[str]]] = {True: {}, False: {}}
        self._queued_by_number: dict[str, int] = {}  # bulk requests queued, per number (none: absent)
        self._holds: dict[str, float] = {}  # held numbers: until when (monotonic)
        self._probes: dict[str, str] = {}  # a held number's conversation checking its account again, once the hold ends
        self._queues: dict[str, deque[Work]] = {}
        self._busy: set[str] = set()
        self._blocked: dict[str, str] = {}
        self._ready: dict[bool, deque[str]] = {True: deque(), False: deque()}
        self._timers: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._waiters: deque[asyncio.Future[None]] = deque()  # idle workers, longest waiting first
        self._alarm: asyncio.TimerHandle | None = None  # fires at ``self._alarm_at``: the earliest timer
        self._alarm_at = 0.0
        self.queued_interactive = 0
        self.queued_bulk = 0

    def add(self, work: Work) -> None:
        key = work.request.conversation_key
        queue = self._queues.setdefault(key, deque())
        if self._blocked.get(key) == work.request.message_id:
            del self._blocked[key]
            queue.appendleft(work)  # the retry goes before the conversation's later messages
        else:
            queue.append(work)
        self._count(work, +1)
        if key not in self._busy:
            self._schedule(key)

    @property
    def interactive_waiting(self) -> bool:
        """An interactive request could start now and waits for a worker. Not one parked on a timer (a rate limit's
        delay), one of a held number (its account cannot send) nor one behind its conversation's request in flight:
        pausing bulk would not start those sooner, and one tenant's held replies would stop every tenant's campaigns."""
        now = time.monotonic()
        for key in self._ready[True]:
            queue = self._queues.get(key)
            if (queue and queue[0].interactive and queue[0].not_before <= now and key not in self._busy
                    and key not in self._blocked and queue[0].request.phone_number_id not in self._holds):
                return True
        return False

    def block(self, work: Work) -> None:
        """Hold the conversation until ``work``'s retry comes back from ``outbound.retry``."""
        self._blocked[work.request.conversation_key] = work.request.message_id

    def unblock(self, work: Work) -> None:
        self._blocked.pop(work.request.conversation_key, None)

    def _count(self, work: Work, delta: int) -> None:
        if work.interactive:
            self.queued_interactive += delta
            return
        self.queued_bulk += delta
        _add(self._queued_by_number, work.request.phone_number_id, delta)

    @property
    def bulk_waiting_for_room(self) -> int:
        """Queued bulk requests of numbers at their bound or held: they go at their numbers' rates or once their
        accounts can send, whatever else is read."""
        return sum(queued for number, queued in self._queued_by_number.items()
                   if self._at_cap(False, number) or number in self._holds)

    def _schedule(self, key: str) -> None:
        queue = self._queues.get(key)
        if not queue:
            self._queues.pop(key, None)
            return
        head = queue[0]
        if key in self._blocked:
            return
        delay = head.not_before - time.monotonic()
        if delay > 0:
            heapq.heappush(self._timers, (head.not_before, next(self._seq), key))
            if self._waiters:
                self._set_alarm()
        else:
            self._ready[head.interactive].append(key)
            self._wake(1)

    async def next(self) -> Work:
        """Wait for the next request whose conversation is free, interactive lane first."""
        while True:
            self._release_timers()
            work = self._take()
            if work is not None:
                if self._ready[True] or (self._ready[False] and not self._bulk_full):
                    self._wake(1)  # more may be ready: the next idle worker looks
                return work
            self._set_alarm()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake(1)  # woken, then cancelled: the wake-up goes to another worker
                else:
                    self._discard(waiter)
                raise

    def _take(self) -> Work | None:
        """The next request that may start now, interactive lane first; None when there is none."""
        for lane in (True, False):
            if not lane and self._bulk_full:
                return None  # done() or again() of a bulk request wakes a worker
            while self._ready[lane]:
                key = self._ready[lane].popleft()
                if (work := self._start(key, lane)) is not None:
                    return work
        return None

    def _start(self, key: str, lane: bool) -> Work | None:
        """The head of ``key``'s conversation, now worked on; None if it may not start (it is held aside if its
        number is at its bound)."""
        if not self._may_start(key, lane):
            return None
        queue = self._queues[key]
        number = queue[0].request.phone_number_id
        if self._at_cap(lane, number) or self._on_hold(number, key):
            self._held[lane].setdefault(number, deque()).append(key)
            return None
        work = queue.popleft()
        self._busy.add(key)
        self._count(work, -1)
        _add(self._working_by_number[lane], number, 1)
        if not lane:
            self.working_bulk += 1
        return work

    def _on_hold(self, number: str, key: str) -> bool:
        """The number is held and ``key`` may not check its account: the hold has not ended, or another conversation
        checks it. Once it has ended, the first conversation met checks it."""
        until = self._holds.get(number)
        if until is None:
            return False
        if until > time.monotonic() or number in self._probes:
            return True
        self._probes[number] = key
        return False

    def _at_cap(self, interactive: bool, number: str) -> bool:
        """The number's requests of the lane worked on reached its bound."""
        return (self.number_cap is not None
                and self._working_by_number[interactive].get(number, 0) >= self.number_cap(number))

    def _may_start(self, key: str, lane: bool) -> bool:
        """The conversation has a request of ``lane`` due at its head, and none in flight or waiting to come back as a
        retry. A key taken out of line or held aside that may not start is dropped: its conversation comes back by its
        own way (its request in flight finishes, its timer rings, its retry is read). A conversation holds both lanes'
        requests (a campaign's message and a reply to the same customer), so a key left in one lane's line can meet
        the other lane's request at its head: started there, it was counted in one lane and finished in the other,
        and the count of bulk requests worked on drifted (negative, or stuck at the bound with none in flight)."""
        queue = self._queues.get(key)
        if not queue:
            return False
        return (queue[0].interactive == lane and key not in self._busy and key not in self._blocked
                and queue[0].not_before <= time.monotonic())

    @property
    def _bulk_full(self) -> bool:
        return self.max_bulk is not None and self.working_bulk >= self.max_bulk

    def _wake(self, count: int) -> None:
        """Wake up to ``count`` idle workers, those waiting longest first."""
        while count > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _set_alarm(self) -> None:
        """Have the earliest parked conversation wake a worker when its time comes (one timer for all)."""
        if not self._timers:
            return
        at = self._timers[0][0]
        if self._alarm is not None:
            if self._alarm_at <= at:
                return
            self._alarm.cancel()
        self._alarm_at = at
        self._alarm = asyncio.get_running_loop().call_later(max(0.0, at - time.monotonic()), self._ring)

    def _ring(self) -> None:
        self._alarm = None
        self._wake(self._release_timers())
        if self._waiters:
            self._set_alarm()

    def _release_timers(self) -> int:
        """Move the conversations whose time has come to their lane; how many were moved."""
        now, released = time.monotonic(), 0
        while self._timers and self._timers[0][0] <= now:
            _, _, key = heapq.heappop(self._timers)
            queue = self._queues.get(key)
            if queue and key not in self._busy and key not in self._blocked and queue[0].not_before <= now:
                self._ready[queue[0].interactive].append(key)
                released += 1
        return released

    def done(self, work: Work) -> None:
        """The conversation's current request is finished: its next one may go."""
        self._finished(work)
        self._schedule(work.request.conversation_key)

    def _finished(self, work: Work) -> None:
        key = work.request.conversation_key
        self._busy.discard(key)
        lane, number = work.interactive, work.request.phone_number_id
        _add(self._working_by_number[lane], number, -1)
        released = 0
        if number in self._holds:  # its conversations aside wait for the account, not for room
            if self._probes.get(number) == key:
                del self._probes[number]
                if self._holds[number] <= time.monotonic():  # checked and not held again: the account can send
                    self._lift(number)
        else:
            released = self._release_held(lane, number)
        if not lane:
            self.working_bulk -= 1
            self._wake(1)  # a bulk request may start
        elif released:
            self._wake(1)  # a reply may start

    def _release_held(self, lane: bool, number: str, room: int = 1) -> int:
        """The number has room again in ``lane``: up to ``room`` of its longest-held conversations that may start go
        back in line, first (they were passed over for the bound); how many did. Held ones that may not start are
        skipped: a duplicate of a conversation that started meanwhile, say, released in vain, left the others held
        with none of the number's requests in flight to release them."""
        held = self._held[lane].get(number)
        released: list[str] = []
        while held and len(released) < room:
            key = held.popleft()
            if self._may_start(key, lane):
                released.append(key)
        self._ready[lane].extendleft(reversed(released))
        if held is not None and not held:
            del self._held[lane][number]
        return len(released)

    def widened(self, number: str) -> None:
        """The number's bound may have risen (its rate was read): as many of its held conversations as the new room
        takes go back in line. Each finished request releases one held conversation, so without this a number first
        bounded at Meta's default rate (40 requests) stayed at 40 in flight once its 1,000 msg/s were read."""
        if self.number_cap is None or number in self._holds:
            return
        room = self.number_cap(number)
        released = 0
        for lane in (True, False):
            free = room - self._working_by_number[lane].get(number, 0)
            if free > 0:
                released += self._release_held(lane, number, free)
        self._wake(released)

    def hold_number(self, work: Work, delay_s: float) -> None:
        """``work``'s number cannot send (its account is held): ``work`` is tried again after ``delay_s``, and the
        number's other requests wait aside until it is (a held number's requests worked on meanwhile, aside at once)."""
        number, key, now = work.request.phone_number_id, work.request.conversation_key, time.monotonic()
        probe = self._probes.get(number)
        if number in self._holds and probe != key and (self._holds[number] > now or probe is not None):
            self._put_back(work)
            self._held[work.interactive].setdefault(number, deque()).append(key)
            return
        if len(self._holds) >= HOLDS_MAX:  # numbers whose holds ended with nothing left to check them
            for other in [n for n, until in self._holds.items() if until <= now and n not in self._probes]:
                self._lift(other)
        self._holds[number] = now + delay_s
        self.again(work, delay_s)

    def _lift(self, number: str) -> None:
        """The number's account can send again: its conversations held aside go back in line, first."""
        self._holds.pop(number, None)
        self._probes.pop(number, None)
        released = 0
        for lane in (True, False):
            held = self._held[lane].pop(number, None)
            if held:
                self._ready[lane].extendleft(reversed(held))
                released += len(held)
        self._wake(released)

    def again(self, work: Work, delay_s: float) -> None:
        """Put ``work`` back at the head of its conversation, to be tried after ``delay_s``."""
        work.not_before = time.monotonic() + delay_s
        self._put_back(work)
        self._schedule(work.request.conversation_key)

    def _put_back(self, work: Work) -> None:
        """``work``, worked on, goes back to the head of its conversation, queued again."""
        self._queues.setdefault(work.request.conversation_key, deque()).appendleft(work)
        self._count(work, +1)
        self._finished(work)

    def drop_partitions(self, revoked: set[tuple[str, int]]) -> int:
        """Forget queued work of revoked partitions (its new owner consumes it again)."""
        dropped = 0
        for key, queue in list(self._queues.items()):
            keep = deque(w for w in queue if (w.topic, w.partition) not in revoked)
            for work in queue:
                if (work.topic, work.partition) in revoked:
                    self._count(work, -1)
                    dropped += 1
            self._queues[key] = keep
        for key in [k for k, q in self._queues.items() if not q]:
            self._queues.pop(key)
            self._blocked.pop(key, None)
        for by_number in self._held.values():  # conversations with nothing left here wait for nothing
            for number, held in list(by_number.items()):
                kept = deque(key for key in held if key in self._queues)
                if kept:
                    by_number[number] = kept
                else:
                    del by_number[number]
        for number in list(self._holds):  # a conversation to check a held account may have gone: each checks again
            self._lift(number)
        return dropped


def _add(counts: dict[str, int], key: str, delta: int) -> None:
    """Add ``delta`` to ``counts[key]``; a count that reaches 0 is removed (the per-number maps stay bounded)."""
    left = counts.get(key, 0) + delta
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
