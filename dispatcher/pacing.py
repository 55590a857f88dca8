"""Hands out a phone number's rate slots to the dispatcher's workers, interactive replies first.

One small loop per busy number books the number's next slots from the shared limiter in Redis (so all
dispatcher processes share the number's throughput), as many as senders wait but only those due within
``lookahead_s``, in one call. Each booked slot is given out when its time comes, to the longest-waiting
interactive request, else to the longest-waiting bulk one: a reply never waits behind slots promised to
bulk sends. Right before each call, ``spaced`` keeps this process's calls for a number one slot apart, again
interactive first. Waiters never poll Redis themselves: no stampede at 1,000 msg/s, and one round trip books
~20 ms of a busy number's slots. The loop is supervised (``broker.tasks``): a Redis outage delays its
waiters, never strands them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from dataclasses import dataclass, field
from functools import partial

from broker.tasks import keep_running
from dispatcher.coalesce import urgent
from dispatcher.ratelimit import RateLimiter

MAX_BOOKED = 256  # slots one number's loop holds booked ahead at most
# A number's spacing keeps a fixed schedule and catches up a turn that came late, but only by the rate limiter's
# margin less this much (25 ms at the default 3 %): a stall of 100 ms at 1,000 msg/s would otherwise put 100 calls
# on the wire at once, more than the margin absorbs in a 1-second window. The rest of the margin is for the jitter
# between the call and Meta's clock. Measured: catching up 5 or 10 ms lost rate and slowed replies during a campaign
# (reply p99 313-910 ms against 187-223 at 25 ms or unbounded); unbounded broke the limit once in a slow spell.
WIRE_JITTER_S = 0.005
# Whatever the schedule does, this process never lets more than the rate less half the margin (985 at 1,000 msg/s and
# 3 %) go in any second, or what the schedule alone lets go at a few a second: the other half is for the way to Meta's
# clock. The schedule alone allowed 971 plus a 25 ms catch-up; with Meta answering 250 ms late, 250 calls on the wire
# and a stall, the simulator timed 1,001-1,009 in a second in 5 of 27 five-second runs and 1 of 6 twelve-second ones
# (``bench dispatch``'s ``rate1000_meta``).
WINDOW_S = 1.0


@dataclass
class _Gate:
    rate: float
    waiting: dict[bool, deque[asyncio.Future[None]]] = field(
        default_factory=lambda: {True: deque(), False: deque()})
    booked: int = 0  # slots booked whose time has not come yet
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def waiters(self) -> int:
        return len(self.waiting[True]) + len(self.waiting[False])

    def next_waiter(self) -> asyncio.Future[None] | None:
        return _first_waiting(self.waiting)


def _first_waiting(waiting: dict[bool, deque[asyncio.Future[None]]]) -> asyncio.Future[None] | None:
    """The longest-waiting interactive waiter still waiting, else the longest-waiting bulk one (taken off)."""
    for lane in (True, False):
        queue = waiting[lane]
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                return waiter
    return None


class NumberPacer:
    """Per-number queues of senders waiting for a rate slot."""

    def __init__(self, limits: RateLimiter, *, lookahead_s: float = 0.02) -> None:
        self.limits = limits
        self.lookahead_s = lookahead_s
        self.catch_up_s = max(0.0, limits.margin - WIRE_JITTER_S)  # the margin's seconds in a 1-second window
        self._gates: dict[str, _Gate] = {}
        self._spacings: dict[str, _Spacing] = {}

    async def spaced(self, phone_number_id: str, rate: float, *, interactive: bool = False) -> None:
        """Right before the call: keep this process's calls for a number at least one slot apart, a reply first.

        Slots are granted on time, but the work between a grant and the request (the idempotency
        claim, the event loop's other work) jitters; this keeps bursts from forming on the wire. Calls
        go on a fixed schedule, one ``interval`` after the previous one's turn, which catches up a turn
        that came late by at most ``catch_up_s``, never more than ``most`` calls in a second (``WINDOW_S``);
        a reply waiting for its turn goes before every bulk call waiting (up to one per connection).
        """
        loop = asyncio.get_running_loop()
        spacing = self._spacings.get(phone_number_id)
        if spacing is None:
            spacing = self._spacings[phone_number_id] = _Spacing((1 + self.limits.margin) / rate, self.catch_up_s)
        spacing.interval = (1 + self.limits.margin) / rate
        spacing.most = max(math.floor(rate * (1 - self.limits.margin / 2)), math.floor(WINDOW_S / spacing.interval) + 1)
        now = loop.time()
        free_at = spacing.room(now)
        if spacing.timer is None and now >= spacing.next_at and free_at is None:
            spacing.went(now, turn=False)
            return
        waiter: asyncio.Future[None] = loop.create_future()
        queue = spacing.waiting[interactive]
        queue.append(waiter)
        if spacing.timer is None:
            spacing.timer = loop.call_at(max(spacing.next_at, free_at or 0.0), _turn, spacing)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    async def slot(self, phone_number_id: str, rate: float, *, interactive: bool) -> None:
        """Return when this sender may call Meta for ``phone_number_id`` (at ``rate`` msg/s)."""
        gate = self._gates.setdefault(phone_number_id, _Gate(rate))
        gate.rate = rate
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = gate.waiting[interactive]
        queue.append(waiter)
        gate.wake.set()
        if gate.task is None or gate.task.done():
            gate.task = keep_running(f"pacer of {phone_number_id}", partial(self._hand_out, phone_number_id, gate))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():  # not counted as waiting any more (its slot, if booked, goes to the next)
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    async def _hand_out(self, phone_number_id: str, gate: _Gate) -> None:
        loop = asyncio.get_running_loop()
        while True:
            need = min(gate.waiters - gate.booked, MAX_BOOKED - gate.booked)
            if need <= 0:
                if not gate.waiters and not gate.booked:
                    return
                gate.wake.clear()
                await gate.wake.wait()  # a sender arrived (or a booked slot came and went)
                continue
            reply = bool(gate.waiting[True])
            with urgent() if reply else contextlib.nullcontext():  # a reply waits: at once
                slots = await self.limits.reserve_slots(phone_number_id, gate.rate, need, max_wait_s=self.lookahead_s,
                                                        reply=reply)
            ahead = slots.ahead_s or self.lookahead_s  # shorter while another process's replies are booked
            if not slots.booked:  # the slots ahead are another process's: come back when the next is due
                await asyncio.sleep(max(0.001, min(slots.delay_s - ahead, ahead)))
                continue
            gate.booked += slots.booked
            for i in range(slots.booked):
                loop.call_later(slots.delay_s + i * slots.interval_s, _grant, gate)
            if slots.booked < need:  # more senders wait: book theirs once they are due within the lookahead
                await asyncio.sleep(max(0.0, slots.delay_s + slots.booked * slots.interval_s - ahead))


@dataclass
class _Spacing:
    """One number's calls in this process: when the next may go, and who waits for it, per lane."""

    interval: float
    catch_up_s: float  # how far behind its schedule a late turn is caught up
    most: int = 1  # calls in any ``WINDOW_S`` at most
    next_at: float = 0.0  # loop time
    waiting: dict[bool, deque[asyncio.Future[None]]] = field(
        default_factory=lambda: {True: deque(), False: deque()})
    timer: asyncio.TimerHandle | None = None
    gone: deque[float] = field(default_factory=deque)  # when the calls of the last ``WINDOW_S`` went (loop time)

    def next_waiter(self) -> asyncio.Future[None] | None:
        return _first_waiting(self.waiting)

    def room(self, now: float) -> float | None:
        """None if a call may go at ``now`` within ``most`` a window, else when one may (loop time)."""
        gone = self.gone
        while gone and gone[0] <= now - WINDOW_S:
            gone.popleft()
        return gone[-self.most] + WINDOW_S if len(gone) >= self.most else None

    def went(self, now: float, *, turn: bool) -> None:
        """A call goes at ``now``: on its ``turn`` (the next keeps the schedule, a catch-up of at most ``catch_up_s``)
        or at once, with no call waiting before it (the schedule starts again)."""
        self.next_at = (max(self.next_at, now - self.catch_up_s) if turn else now) + self.interval
        self.gone.append(now)


def _grant(gate: _Gate) -> None:
    """A booked slot's time came: it goes to the next waiter, interactive first."""
    gate.booked -= 1
    waiter = gate.next_waiter()
    if waiter is not None:
        waiter.set_result(None)
    if not gate.booked and not gate.waiters:
        gate.wake.set()  # nothing left to hand out: the loop ends


def _turn(spacing: _Spacing) -> None:
    """A number's next call may go: the longest-waiting reply's, else the longest-waiting bulk send's."""
    spacing.timer = None
    loop = asyncio.get_running_loop()
    now = loop.time()
    if (free_at := spacing.room(now)) is not None:  # the last second's calls are at the most: wait for one to age out
        if spacing.waiting[True] or spacing.waiting[False]:
            spacing.timer = loop.call_at(free_at, _turn, spacing)
        return
    waiter = spacing.next_waiter()
    if waiter is None:
        return
    waiter.set_result(None)
    spacing.went(now, turn=True)
    if spacing.waiting[True] or spacing.waiting[False]:
        spacing.timer = loop.call_at(spacing.next_at, _turn, spacing)


class CallGate:
    """At most ``size`` Graph calls at once; a free place goes to a waiting interactive send first.

    A plain semaphore would queue a reply behind every bulk send already waiting for a connection. ``resize`` changes
    the bound; calls already on the wire beyond a smaller one finish, and their places are not handed on.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    async def enter(self, *, interactive: bool) -> None:
        if self.free > 0 and not any(self._waiting.values()):
            self.free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[interactive].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # the place was handed over just as we were cancelled
            raise

    async def take(self, *, interactive: bool) -> Place:
        """``enter``, as a place to give back once (``Place.release``)."""
        await self.enter(interactive=interactive)
        return Place(self)

    def leave(self) -> None:
        if self.free >= 0 and (waiter := _first_waiting(self._waiting)) is not None:
            waiter.set_result(None)
            return
        self.free += 1

    def resize(self, size: int) -> None:
        """From now on at most ``size`` calls at once."""
        self.free += size - self.size
        self.size = size
        while self.free > 0 and (waiter := _first_waiting(self._waiting)) is not None:
            self.free -= 1
            waiter.set_result(None)


class Place:
    """A place taken in a ``CallGate``; ``release`` gives it back, and again does nothing."""

    __slots__ = ("_gate",)

    def __init__(self, gate: CallGate) -> None:
        self._gate: CallGate | None = gate

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.leave()
