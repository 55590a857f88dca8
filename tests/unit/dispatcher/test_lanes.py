"""Scheduler order and priority, offset tracking: the dispatcher's in-memory rules."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from broker.offsets import OffsetTracker
from dispatcher.lanes import Scheduler, Work
from schemas.outbound import OutboundRequest


def _work(message_id: str, *, to: str = "1555", lane: str = "interactive", offset: int = 0,
          attempt: int = 0, number: str = "pn") -> Work:
    request = OutboundRequest(event_id=message_id, tenant_id="t", message_id=message_id,
                              idempotency_key=f"t:{message_id}", phone_number_id=number, to=to,
                              message={"type": "text", "text": {"body": message_id}}, lane=lane,
                              created_at=datetime.now(UTC), attempt=attempt)
    return Work(request, f"outbound.{lane}", 0, offset)


async def test_one_request_per_conversation_at_a_time_in_order() -> None:
    scheduler = Scheduler()
    first, second, other = _work("a1"), _work("a2", offset=1), _work("b1", to="1666", offset=2)
    for work in (first, second, other):
        scheduler.add(work)
    taken = [await scheduler.next(), await scheduler.next()]
    assert taken == [first, other]  # a2 waits for a1
    waiter = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0)
    assert not waiter.done()
    scheduler.done(first)
    assert await asyncio.wait_for(waiter, 1) is second


async def test_interactive_goes_before_bulk_queued_earlier() -> None:
    scheduler = Scheduler()
    bulk = [_work(f"b{i}", to=f"2{i}", lane="bulk", offset=i) for i in range(5)]
    for work in bulk:
        scheduler.add(work)
    reply = _work("reply", to="3000", offset=9)
    scheduler.add(reply)
    assert scheduler.queued_interactive == 1 and scheduler.queued_bulk == 5
    assert await scheduler.next() is reply


async def test_a_retry_blocks_later_messages_until_it_comes_back() -> None:
    scheduler = Scheduler()
    first, second = _work("m1"), _work("m2", offset=1)
    scheduler.add(first)
    scheduler.add(second)
    assert await scheduler.next() is first
    scheduler.block(first)
    scheduler.done(first)
    waiter = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.01)
    assert not waiter.done()  # m2 must not overtake m1's retry
    retry = _work("m1", offset=5, attempt=1)
    scheduler.add(retry)
    assert await asyncio.wait_for(waiter, 1) is retry


async def test_again_delays_the_head_of_its_conversation() -> None:
    scheduler = Scheduler()
    work = _work("x")
    scheduler.add(work)
    taken = await scheduler.next()
    scheduler.again(taken, 0.05)
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(scheduler.next(), 1) is work
    assert asyncio.get_running_loop().time() - started >= 0.04


def test_offsets_commit_only_below_the_first_unfinished() -> None:
    tracker = OffsetTracker()
    for offset in range(5):
        tracker.received("t", 0, offset)
    tracker.finished("t", 0, 0)
    tracker.finished("t", 0, 2)
    assert tracker.committable() == {("t", 0): 1}
    tracker.committed({("t", 0): 1})
    assert tracker.committable() == {}
    for offset in (1, 3, 4):
        tracker.finished("t", 0, offset)
    assert tracker.committable() == {("t", 0): 5}


def test_revoked_partitions_are_forgotten() -> None:
    tracker = OffsetTracker()
    tracker.received("t", 1, 7)
    tracker.forget({("t", 1)})
    assert tracker.committable() == {}
    scheduler = Scheduler()
    scheduler.add(_work("z", offset=3))
    assert scheduler.drop_partitions({("outbound.interactive", 0)}) == 1
    assert scheduler.queued_interactive == 0


async def test_bulk_work_is_bounded_and_a_reply_takes_a_free_worker() -> None:
    scheduler = Scheduler(max_bulk=2)
    bulk = [_work(f"b{i}", to=f"2{i}", lane="bulk", offset=i) for i in range(4)]
    for work in bulk:
        scheduler.add(work)
    assert [await scheduler.next(), await scheduler.next()] == bulk[:2]
    third = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.01)
    assert not third.done() and scheduler.working_bulk == 2  # two bulk sends at most
    reply = _work("reply", to="3000", offset=9)
    scheduler.add(reply)
    assert await asyncio.wait_for(third, 1) is reply  # the waiting worker takes the reply
    scheduler.done(reply)
    scheduler.again(bulk[0], 0.0)  # a bulk request put back frees its place too
    assert await asyncio.wait_for(scheduler.next(), 1) is bulk[2]
    fourth = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.01)
    assert not fourth.done()
    scheduler.done(bulk[1])
    assert await asyncio.wait_for(fourth, 1) is bulk[3]
    assert scheduler.working_bulk == 2


async def test_a_number_at_its_cap_leaves_the_bulk_workers_to_other_numbers() -> None:
    scheduler = Scheduler(max_bulk=10, number_cap=lambda number: 2 if number == "slow" else 100)
    slow = [_work(f"s{i}", to=f"5{i}", lane="bulk", offset=i, number="slow") for i in range(5)]
    fast = [_work(f"f{i}", to=f"6{i}", lane="bulk", offset=10 + i, number="fast") for i in range(3)]
    for work in (*slow, *fast):  # the slow number's backlog first
        scheduler.add(work)
    taken = [await scheduler.next() for _ in range(5)]
    assert taken == [*slow[:2], *fast]  # two of the slow number's, then the fast one's, queued after them
    idle = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.01)
    assert not idle.done()  # the slow number's others wait for its room, not for a worker
    scheduler.done(slow[0])
    assert await asyncio.wait_for(idle, 1) is slow[2]  # its room again: the conversation held longest goes first
    scheduler.again(slow[1], 0.0)  # put back, a request leaves its number's room to the next held
    assert await asyncio.wait_for(scheduler.next(), 1) is slow[3]
    later = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.01)
    assert not later.done()  # slow[1] is back in line, and held: its number is at its cap again
    scheduler.done(slow[2])
    assert await asyncio.wait_for(later, 1) is slow[4]  # held before slow[1] was put back
    scheduler.done(slow[3])
    assert await asyncio.wait_for(scheduler.next(), 1) is slow[1]
    assert scheduler.queued_bulk == 0 and scheduler.working_bulk == 5  # slow[1], slow[4] and the fast three


async def test_a_number_whose_bound_rose_has_its_held_conversations_started_without_waiting_for_a_finish() -> None:
    caps = {"fast": 2}  # bounded at Meta's default rate until its rate is read
    scheduler = Scheduler(max_bulk=10, number_cap=lambda number: caps[number])
    sends = [_work(f"s{i}", to=f"5{i}", lane="bulk", offset=i, number="fast") for i in range(7)]
    reply = _work("r", to="59", offset=9, number="fast")
    for work in (*sends, reply):
        scheduler.add(work)
    assert [await scheduler.next() for _ in range(3)] == [reply, *sends[:2]]
    idle = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.01)
    assert not idle.done() and scheduler.bulk_waiting_for_room == 5
    caps["fast"] = 5
    scheduler.widened("fast")  # its rate read: three more may go now, none of its requests finished
    assert await asyncio.wait_for(idle, 1) is sends[2]
    assert [await asyncio.wait_for(scheduler.next(), 1) for _ in range(2)] == sends[3:5]  # in the order held
    later = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.01)
    assert not later.done() and scheduler.bulk_waiting_for_room == 2  # at its new bound
    scheduler.widened("fast")  # read again, unchanged: nothing more goes
    await asyncio.sleep(0.01)
    assert not later.done()
    scheduler.done(sends[0])
    assert await asyncio.wait_for(later, 1) is sends[5]


async def test_a_number_at_its_cap_of_replies_leaves_the_workers_to_other_numbers_replies() -> None:
    scheduler = Scheduler(max_bulk=10, number_cap=lambda number: 2 if number == "slow" else 100)
    slow = [_work(f"s{i}", to=f"5{i}", offset=i, number="slow") for i in range(4)]
    fast = [_work(f"f{i}", to=f"6{i}", offset=10 + i, number="fast") for i in range(2)]
    bulk = _work("b0", to="70", lane="bulk", offset=20, number="slow")
    for work in (*slow, *fast, bulk):  # a burst of replies on the slow number first
        scheduler.add(work)
    taken = [await scheduler.next() for _ in range(5)]
    assert taken == [*slow[:2], *fast, bulk]  # the slow number's bulk lane has its own room
    idle = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.01)
    assert not idle.done()  # the slow number's other replies wait for its room, not for a worker
    assert scheduler.queued_interactive == 2 and not scheduler.interactive_waiting  # no reason to pause bulk
    scheduler.done(bulk)
    await asyncio.sleep(0.01)
    assert not idle.done()  # a bulk request's end makes no room for a reply
    scheduler.done(slow[0])
    assert await asyncio.wait_for(idle, 1) is slow[2]
    scheduler.done(slow[1])
    assert await asyncio.wait_for(scheduler.next(), 1) is slow[3]
    assert scheduler.queued_interactive == 0


async def test_the_queued_requests_of_a_number_at_its_cap_are_counted_apart() -> None:
    scheduler = Scheduler(number_cap=lambda number: 1 if number == "slow" else 100)
    slow = [_work(f"s{i}", to=f"5{i}", lane="bulk", offset=i, number="slow") for i in range(3)]
    fast = [_work(f"f{i}", to=f"6{i}", lane="bulk", offset=10 + i, number="fast") for i in range(2)]
    for work in (*slow, *fast):
        scheduler.add(work)
    assert scheduler.queued_bulk == 5 and scheduler.bulk_waiting_for_room == 0  # the slow number has room
    assert await scheduler.next() is slow[0]
    assert scheduler.bulk_waiting_for_room == 2  # at its cap: its other two go at its rate, whatever else is read
    assert [await scheduler.next(), await scheduler.next()] == fast
    assert scheduler.queued_bulk == 2 and scheduler.bulk_waiting_for_room == 2
    scheduler.done(slow[0])
    assert scheduler.bulk_waiting_for_room == 0
    assert await scheduler.next() is slow[1]
    assert scheduler.queued_bulk == 1 and scheduler.bulk_waiting_for_room == 1
    assert Scheduler().bulk_waiting_for_room == 0  # no caps: nothing waits for room


async def test_only_a_reply_that_could_start_now_counts_as_waiting_for_bulk_to_pause() -> None:
    scheduler = Scheduler()
    assert not scheduler.interactive_waiting
    held = _work("held", to="4000")
    scheduler.add(held)
    assert scheduler.interactive_waiting
    assert await scheduler.next() is held
    scheduler.again(held, 60.0)  # a held account's re-check: parked on a timer
    behind_first, behind_second = _work("x1", to="5000", offset=1), _work("x2", to="5000", offset=2)
    scheduler.add(behind_first)
    assert await scheduler.next() is behind_first
    scheduler.add(behind_second)  # waits for x1, in flight
    assert scheduler.queued_interactive == 2
    assert not scheduler.interactive_waiting  # bulk keeps flowing for every other tenant
    scheduler.done(behind_first)
    assert scheduler.interactive_waiting


class CountingLooks(Scheduler):
    """Counts how often a worker looked for work (each look is one wake-up of a worker)."""

    looks = 0

    def _take(self) -> Work | None:
        self.looks += 1
        return super()._take()


async def _settle_loop() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_request_wakes_one_idle_worker_not_all_of_them() -> None:
    scheduler = CountingLooks()
    workers = [asyncio.create_task(scheduler.next()) for _ in range(50)]
    await _settle_loop()
    assert scheduler.looks == 50  # each looked once, found nothing and waits
    reply = _work("r1")
    scheduler.add(reply)
    await _settle_loop()
    assert scheduler.looks == 51  # one woke and took it; 49 slept on
    assert [w.result() for w in workers if w.done()] == [reply]
    scheduler.add(_work("r2", to="1777"))
    scheduler.add(_work("r3", to="1888"))
    await _settle_loop()
    assert sum(w.done() for w in workers) == 3
    assert scheduler.looks - 51 <= 3  # two wake-ups, and one more when the first still saw the second ready
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def test_one_timer_wakes_as_many_workers_as_conversations_it_releases() -> None:
    scheduler = Scheduler()
    parked = [_work(f"p{i}", to=f"4{i}", offset=i) for i in range(5)]
    for work in parked:
        scheduler.add(work)
    for _ in parked:
        scheduler.again(await scheduler.next(), 0.03)
    workers = [asyncio.create_task(scheduler.next()) for _ in range(8)]
    got = await asyncio.wait_for(asyncio.gather(*workers[:5]), 1)
    assert sorted(w.request.message_id for w in got) == [w.request.message_id for w in parked]
    assert not any(w.done() for w in workers[5:])
    for worker in workers[5:]:
        worker.cancel()
    await asyncio.gather(*workers[5:], return_exceptions=True)


async def test_a_worker_cancelled_after_its_wake_up_passes_it_on() -> None:
    scheduler = Scheduler()
    first, second = asyncio.create_task(scheduler.next()), asyncio.create_task(scheduler.next())
    await _settle_loop()
    work = _work("w1")
    scheduler.add(work)  # wakes the first waiter...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) is work
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled()


async def test_at_the_bulk_bound_taking_bulk_work_wakes_nobody_more() -> None:
    scheduler = CountingLooks(max_bulk=1)
    workers = [asyncio.create_task(scheduler.next()) for _ in range(3)]
    await _settle_loop()
    first, second = _work("b1", to="2001", lane="bulk"), _work("b2", to="2002", lane="bulk", offset=1)
    scheduler.add(first)
    scheduler.add(second)  # one wake-up each
    await _settle_loop()
    assert [w.result() for w in workers if w.done()] == [first]
    assert scheduler.looks == 3 + 2  # the one that took b1 woke no one for b2: the bound holds it back
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def test_a_held_number_is_checked_by_one_request_while_its_others_wait_aside() -> None:
    scheduler = Scheduler(max_bulk=20, number_cap=lambda number: 100)
    held = [_work(f"h{i}", to=f"5{i}", lane="bulk", offset=i, number="held") for i in range(6)]
    for work in held[:3]:
        scheduler.add(work)
    found = [await scheduler.next() for _ in range(3)]  # worked on as the account turns out held
    for work in found:
        scheduler.hold_number(work, 0.05)  # the first holds the number; the others go aside at once
    reply = _work("r", to="59", offset=9, number="held")
    other = _work("o", to="61", lane="bulk", offset=10, number="other")
    for work in (*held[3:], reply, other):  # read meanwhile: no reply waits for a worker, and they go aside
        scheduler.add(work)
    assert not scheduler.interactive_waiting  # the held number's reply pauses no one's campaign
    assert await scheduler.next() is other
    assert scheduler.bulk_waiting_for_room == 6  # read past: they wait for the account, whatever else is read
    assert await asyncio.wait_for(scheduler.next(), 1) is held[0]  # the hold over, the first checks alone
    idle = asyncio.create_task(scheduler.next())
    await asyncio.sleep(0.1)
    assert not idle.done()
    scheduler.hold_number(held[0], 0.05)  # still held: it checks again later, the others still wait
    assert await asyncio.wait_for(idle, 1) is held[0]
    scheduler.done(held[0])  # the account sends again: everything held aside goes, the reply first
    rest = [await asyncio.wait_for(scheduler.next(), 1) for _ in range(6)]
    assert rest == [reply, *held[1:]]
    assert scheduler.bulk_waiting_for_room == 0


async def test_a_hold_whose_check_was_revoked_ends_with_the_partitions() -> None:
    scheduler = Scheduler(number_cap=lambda number: 100)
    first, second = (_work(f"h{i}", to=f"5{i}", lane="bulk", offset=i, number="held") for i in range(2))
    scheduler.add(first)
    scheduler.add(second)
    taken = [await scheduler.next(), await scheduler.next()]
    scheduler.hold_number(taken[0], 60.0)
    scheduler.hold_number(taken[1], 60.0)  # aside, behind a check a minute away
    assert scheduler.drop_partitions({("outbound.bulk", 0)}) == 2
    kept = _work("k", to="57", lane="bulk", offset=5, number="held")
    kept.partition = 1
    scheduler.add(kept)  # read by the new owner of the partitions, or a later request: not held any more
    assert await asyncio.wait_for(scheduler.next(), 1) is kept


async def test_no_conversation_is_left_held_when_a_random_mix_of_requests_drains() -> None:
    """Two ways requests were stranded. A conversation holds both lanes' requests, and a copy of its key left in one
    lane's line could start the other lane's request there: counted in one lane, finished in the other. And a
    conversation can be held aside twice (a request added while it waited): a copy released after it started
    meanwhile was released in vain, and the others of its number stayed held with none of its requests in flight
    to release them."""
    for seed in range(20):
        rng = random.Random(seed)
        scheduler = Scheduler(max_bulk=6, number_cap=lambda number: 2)
        working: list[Work] = []
        added = finished = 0

        async def take(scheduler: Scheduler = scheduler) -> Work | None:
            task = asyncio.create_task(scheduler.next())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if task.done():
                return task.result()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return None

        for step in range(400):
            roll = rng.random()
            if roll < 0.4:
                conversation = rng.randrange(12)
                scheduler.add(_work(f"m{step}", to=f"9{conversation}", lane=rng.choice(("interactive", "bulk")),
                                    number=f"n{conversation % 3}"))
                added += 1
            elif roll < 0.7:
                if (work := await take()) is not None:
                    working.append(work)
            elif working:
                work = working.pop(rng.randrange(len(working)))
                if (roll := rng.random()) < 0.1:
                    scheduler.again(work, 0.0)
                elif roll < 0.2:
                    scheduler.hold_number(work, 0.0)  # its account turned out held: a check at once, the rest aside
                else:
                    scheduler.done(work)
                    finished += 1
        while True:  # drain: take what may start, finish it, until nothing is left
            while (work := await take()) is not None:
                working.append(work)
            if not working:
                break
            for work in working:
                scheduler.done(work)
                finished += 1
            working = []
        assert finished == added, f"seed {seed}: {added - finished} requests never taken"
