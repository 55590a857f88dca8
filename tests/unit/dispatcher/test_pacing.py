"""The pacer: slots go to interactive senders first, and calls on the wire stay a slot apart."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from dispatcher import coalesce
from dispatcher.pacing import WINDOW_S, CallGate, NumberPacer
from dispatcher.ratelimit import Slots

SLOT_S = 0.02  # 50/s
EPSILON_S = 0.001  # the first call's own time is read a moment after its turn


def _on_the_grid(times: list[float]) -> list[float]:
    """How far each call came after its turn on the schedule the first call started (negative: early). The
    pacer keeps a fixed schedule, so a late wake-up may be followed by a shorter gap (catching up at most
    ``catch_up_s``), never by an early call."""
    return [t - times[0] - k * SLOT_S for k, t in enumerate(times)]


class _Limiter:
    """A stand-in for the Redis limiter: one slot every ``interval`` seconds, booked in order."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.margin = 0.0
        self.next_at = 0.0
        self.calls = 0

    async def reserve_slots(self, _number: str, _rate: float, count: int, *, max_wait_s: float,
                            reply: bool = False) -> Slots:
        self.calls += 1
        now = asyncio.get_running_loop().time()
        start = max(now, self.next_at)
        if start - now > max_wait_s:
            return Slots(0, start - now, self.interval)
        booked = min(count, int((max_wait_s - (start - now)) / self.interval) + 1 if self.interval else count)
        self.next_at = start + self.interval * booked
        return Slots(booked, start - now, self.interval)


async def test_a_reply_overtakes_the_bulk_sends_queued_before_it() -> None:
    pacer = NumberPacer(_Limiter(0.01), lookahead_s=0.005)  # type: ignore[arg-type]
    order: list[str] = []

    async def sender(name: str, *, interactive: bool) -> None:
        await pacer.slot("pn", 100.0, interactive=interactive)
        order.append(name)

    bulk = [asyncio.create_task(sender(f"bulk{i}", interactive=False)) for i in range(10)]
    await asyncio.sleep(0.025)  # two or three bulk sends got their slots
    reply = asyncio.create_task(sender("reply", interactive=True))
    await asyncio.gather(*bulk, reply)
    assert order.index("reply") <= 4, order
    assert sorted(order) == sorted([f"bulk{i}" for i in range(10)] + ["reply"])


async def test_calls_released_together_go_one_slot_apart_on_a_fixed_schedule() -> None:
    limiter: Any = _Limiter(0.0)
    pacer = NumberPacer(limiter)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def call() -> None:
        await pacer.spaced("pn", 50.0)  # 20 ms apart
        times.append(loop.time())

    await asyncio.gather(*(call() for _ in range(5)))
    assert min(_on_the_grid(times)) >= -EPSILON_S, times


async def test_a_stalled_event_loop_is_not_made_up_by_a_burst_of_calls() -> None:
    limiter = _Limiter(0.0)
    limiter.margin = 0.010  # 5 ms of catching up, the rest of the margin left for the wire
    pacer = NumberPacer(limiter)  # type: ignore[arg-type]
    assert pacer.catch_up_s == pytest.approx(0.005)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def call() -> None:
        await pacer.spaced("pn", 100.0 * 1.01)  # 10 ms apart with the margin
        times.append(loop.time())

    calls = [asyncio.create_task(call()) for _ in range(12)]
    await asyncio.sleep(0.025)  # three calls have gone
    time.sleep(0.1)  # the loop stalls for ten turns  # noqa: ASYNC251 - the stall is the point
    await asyncio.gather(*calls)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.010 - pacer.catch_up_s - 0.0015, gaps  # caught up by 5 ms at most, not by 100
    # The stall is not made up (less the turn under way when it began): 200 ms for the twelve, not 110.
    assert times[-1] - times[0] >= 11 * 0.010 + 0.1 - 0.010 - pacer.catch_up_s - 0.0015, times


async def test_a_caught_up_turn_never_puts_more_than_most_calls_in_a_second() -> None:
    """A stall's catch-up goes at once; with the calls that follow on schedule, a second starting at it would hold the
    rate plus the catch-up. ``most`` (the rate less half the margin) bounds every second, however the loop stalls."""
    limiter = _Limiter(0.0)
    limiter.margin = 0.2  # 60 ms apart at 20 a second, 195 ms of catching up, at most 18 a second
    pacer = NumberPacer(limiter)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def call() -> None:
        await pacer.spaced("pn", 20.0)
        times.append(loop.time())

    calls = [asyncio.create_task(call()) for _ in range(26)]
    await asyncio.sleep(0.13)  # three calls have gone
    time.sleep(0.25)  # the loop stalls: three turns are caught up at once  # noqa: ASYNC251 - the stall is the point
    await asyncio.gather(*calls)
    most = max(sum(1 for t in times if start <= t < start + WINDOW_S) for start in times)
    assert most <= 18, times
    assert len([gap for a, b in itertools.pairwise(times) if (gap := b - a) < 0.01]) >= 2, times  # it did catch up


async def test_a_reply_waiting_to_be_spaced_goes_before_earlier_bulk_calls() -> None:
    limiter: Any = _Limiter(0.0)
    pacer = NumberPacer(limiter)
    loop = asyncio.get_running_loop()
    order: list[tuple[str, float]] = []

    async def call(name: str, *, interactive: bool) -> None:
        await pacer.spaced("pn", 50.0, interactive=interactive)  # 20 ms apart
        order.append((name, loop.time()))

    waiting = [asyncio.create_task(call(f"bulk{i}", interactive=False)) for i in range(4)]
    await asyncio.sleep(0)  # bulk0 goes at once, the others wait for their turns
    waiting.append(asyncio.create_task(call("reply", interactive=True)))
    await asyncio.gather(*waiting)
    assert [name for name, _ in order] == ["bulk0", "reply", "bulk1", "bulk2", "bulk3"]
    assert min(_on_the_grid([at for _, at in order])) >= -EPSILON_S, order


async def test_the_call_gate_lets_a_waiting_reply_in_before_earlier_bulk_sends() -> None:
    gate = CallGate(1)
    await gate.enter(interactive=False)
    order: list[str] = []

    async def send(name: str, *, interactive: bool) -> None:
        await gate.enter(interactive=interactive)
        order.append(name)
        gate.leave()

    waiting = [asyncio.create_task(send(f"bulk{i}", interactive=False)) for i in range(3)]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(send("reply", interactive=True)))
    await asyncio.sleep(0)
    gate.leave()
    await asyncio.gather(*waiting)
    assert order == ["reply", "bulk0", "bulk1", "bulk2"]
    assert gate.free == 1


async def test_a_booking_for_a_waiting_reply_goes_at_once_and_a_bulk_one_may_linger() -> None:
    """The pacer's Redis call is ``urgent()`` (never held back with bulk's calls) exactly when a reply waits."""
    urgency: list[bool] = []
    replies: list[bool] = []

    class Recording(_Limiter):
        async def reserve_slots(self, number: str, rate: float, count: int, *, max_wait_s: float,
                                reply: bool = False) -> Slots:
            urgency.append(coalesce._URGENT.get())
            replies.append(reply)
            return await super().reserve_slots(number, rate, count, max_wait_s=max_wait_s)

    pacer = NumberPacer(Recording(0.001), lookahead_s=0.005)  # type: ignore[arg-type]
    await pacer.slot("pn", 1000.0, interactive=False)
    assert urgency == replies == [False]
    await pacer.slot("pn", 1000.0, interactive=True)
    assert urgency == replies == [False, True]  # a reply's booking marks the number for the other processes


async def test_the_call_gates_place_is_given_back_once() -> None:
    gate = CallGate(2)
    place = await gate.take(interactive=False)
    assert gate.free == 1
    place.release()
    place.release()  # again: nothing more given back
    assert gate.free == 2


async def test_a_wider_call_gate_lets_waiting_calls_in_at_once_replies_first() -> None:
    gate = CallGate(1)
    await gate.enter(interactive=False)
    bulk = asyncio.create_task(gate.enter(interactive=False))
    reply = asyncio.create_task(gate.enter(interactive=True))
    await asyncio.sleep(0)
    assert not bulk.done() and not reply.done()
    gate.resize(2)  # one more place: the reply's
    await asyncio.sleep(0)
    assert reply.done() and not bulk.done()
    gate.resize(3)
    await bulk
    assert (gate.size, gate.free) == (3, 0)


async def test_a_narrower_call_gate_lets_the_calls_on_the_wire_finish_and_hands_on_no_place_until_under_it() -> None:
    gate = CallGate(3)
    places = [await gate.take(interactive=False) for _ in range(3)]
    waiting = asyncio.create_task(gate.enter(interactive=True))
    gate.resize(1)
    assert gate.free == -2
    places[0].release()
    places[1].release()
    await asyncio.sleep(0)
    assert not waiting.done() and gate.free == 0  # one call still on the wire: the bound
    places[2].release()
    await waiting
    assert gate.free == 0
