"""Hands out a phone number's rate slots to the dispatcher's workers, interactive replies first.

One small loop per busy number books the next slot from the shared limiter in Redis (so all
dispatcher processes share the number's throughput) only when that slot is about to come
(``lookahead_s``), and gives it to the longest-waiting interactive request, else to the
longest-waiting bulk one. Waiters never poll Redis themselves: no stampede at 1,000 msg/s, and
a reply queued behind a campaign waits for at most the slots already handed out. The loop is
supervised (``broker.tasks``): a Redis outage delays its waiters, never strands them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from functools import partial

from broker.tasks import keep_running
from dispatcher.ratelimit import RateLimiter


@dataclass
class _Gate:
    rate: float
    waiting: dict[bool, deque[asyncio.Future[None]]] = field(
        default_factory=lambda: {True: deque(), False: deque()})
    task: asyncio.Task[None] | None = None

    def next_waiter(self) -> asyncio.Future[None] | None:
        for lane in (True, False):
            queue = self.waiting[lane]
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
        self._gates: dict[str, _Gate] = {}
        self._last_call: dict[str, float] = {}

    async def spaced(self, phone_number_id: str, rate: float) -> None:
        """Right before the call: keep this process's calls for a number at least one slot apart.

        Slots are granted on time, but the work between a grant and the request (the idempotency
        claim, the event loop's other work) jitters; this keeps bursts from forming on the wire.
        """
        interval = (1 + self.limits.margin) / rate
        loop = asyncio.get_running_loop()
        last = self._last_call.get(phone_number_id, 0.0)
        delay = last + interval - loop.time()
        if delay > 0:
            self._last_call[phone_number_id] = last + interval
            await asyncio.sleep(delay)
        else:
            self._last_call[phone_number_id] = loop.time()

    async def slot(self, phone_number_id: str, rate: float, *, interactive: bool) -> None:
        """Return when this sender may call Meta for ``phone_number_id`` (at ``rate`` msg/s)."""
        gate = self._gates.setdefault(phone_number_id, _Gate(rate))
        gate.rate = rate
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.waiting[interactive].append(waiter)
        if gate.task is None or gate.task.done():
            gate.task = keep_running(f"pacer of {phone_number_id}", partial(self._hand_out, phone_number_id, gate))
        await waiter

    async def _hand_out(self, phone_number_id: str, gate: _Gate) -> None:
        loop = asyncio.get_running_loop()
        while any(w for q in gate.waiting.values() for w in q if not w.done()):
            wait = await self.limits.reserve_number(phone_number_id, gate.rate, max_wait_s=self.lookahead_s)
            if wait is None:
                await asyncio.sleep(self.lookahead_s / 2)
                continue
            waiter = gate.next_waiter()
            if waiter is None:
                break
            if wait > 0:
                loop.call_later(wait, _release, waiter)
            else:
                _release(waiter)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class CallGate:
    """At most ``size`` Graph calls at once; a free place goes to a waiting interactive send first.

    A plain semaphore would queue a reply behind every bulk send already waiting for a connection.
    """

    def __init__(self, size: int) -> None:
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

    def leave(self) -> None:
        for lane in (True, False):
            queue = self._waiting[lane]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self.free += 1
