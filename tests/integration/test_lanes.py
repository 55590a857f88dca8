"""The dispatcher's two lanes on one number: replies go first, and a campaign's backlog still keeps its rate.

Requests are produced straight onto ``outbound.bulk`` and ``outbound.interactive`` (as the recipient stage and
the conversation processor do) for a number of its own; the real dispatcher sends them to the simulator, whose
log says when each call was accepted.
"""

from __future__ import annotations

import asyncio
import bisect
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.dispatch import over_limit_windows
from broker.producer import AsyncProducer
from config.settings import CoreSettings
from dispatcher.service import INTERACTIVE_SHARE
from schemas.catalogue import OUTBOUND_BULK, OUTBOUND_INTERACTIVE
from schemas.outbound import OutboundRequest
from stack.launcher import LocalStack
from tests.integration.helpers import (
    TEST_BULK_BUFFER,
    TEST_CONCURRENCY,
    TEST_RATE_MARGIN,
    BusinessFactory,
    scrape,
    total,
    wait_for,
)
from vault.store import set_status

pytestmark = pytest.mark.usefixtures("pipeline_ready")

THROUGHPUT = 200
BULK = 1000
REPLIES = 100
REPLY_EVERY_S = 0.02


async def _queue(producer: AsyncProducer, settings: CoreSettings, tenant_id: str, pnid: str, to: str,
                 lane: str) -> None:
    message_id = uuid.uuid4().hex
    request = OutboundRequest(
        event_id=message_id, tenant_id=tenant_id, message_id=message_id, idempotency_key=f"{tenant_id}:{message_id}",
        phone_number_id=pnid, to=to, message={"type": "text", "text": {"body": lane}}, lane=lane,
        window_until=time.time() + 3600, created_at=datetime.now(UTC))
    topic = (OUTBOUND_BULK if lane == "bulk" else OUTBOUND_INTERACTIVE).full_name(settings.topic_prefix)
    await producer.send(topic, request.encode(), request.conversation_key.encode())


async def start_campaign(producer: AsyncProducer, settings: CoreSettings, sim: httpx.AsyncClient, tenant_id: str,
                         pnid: str, count: int) -> None:
    """Queue ``count`` bulk requests (recipients 1777…) for ``pnid`` and wait for the first to reach the simulator."""
    await asyncio.gather(*(_queue(producer, settings, tenant_id, pnid, f"1777{i:07d}", "bulk") for i in range(count)))

    async def campaign_started() -> bool:
        return any(r["recipient"].startswith("1777") for r in await accepted_sends(sim, pnid))

    await wait_for(campaign_started, timeout=60, what="the first bulk send")


async def queue_replies(producer: AsyncProducer, settings: CoreSettings, tenant_id: str, pnid: str, count: int,
                        every_s: float) -> None:
    """Queue ``count`` replies (recipients 1888…) for ``pnid``, one every ``every_s``: a load at a steady rate."""
    for i in range(count):
        await _queue(producer, settings, tenant_id, pnid, f"1888{i:07d}", "interactive")
        await asyncio.sleep(every_s)


async def accepted_sends(sim: httpx.AsyncClient, pnid: str) -> list[dict[str, Any]]:
    """The message calls the simulator accepted from number ``pnid``, each with its recipient and arrival time."""
    response = await sim.get("/_sim/requests", params={"phone_number_id": pnid})
    response.raise_for_status()
    return [r for r in response.json()["data"] if r["status"] == 200 and r["path"].endswith("/messages")]


async def _sent_before(sim: httpx.AsyncClient, slow: str, slow_count: int, fast: str, fast_count: int) -> int:
    """How many of the ``slow`` number's ``slow_count`` sends went before the last of the ``fast`` one's
    ``fast_count``, once both are all sent."""

    async def sent(number: str, count: int) -> list[float] | None:
        times = [r["time"] for r in await accepted_sends(sim, number)]
        return times if len(times) == count else None

    finished = max(await wait_for(lambda: sent(fast, fast_count), timeout=60, what=f"{fast}'s sends"))
    slow_sent = await wait_for(lambda: sent(slow, slow_count), timeout=60, what=f"{slow}'s sends")
    return sum(t <= finished for t in slow_sent)


async def _paused_for_replies(stack: LocalStack) -> float:
    """Seconds the dispatcher has kept its bulk lane paused for replies waiting for a worker."""
    return total(await scrape(stack, "dispatcher"), "aerostic_dispatcher_bulk_paused_seconds_total", reason="replies")


async def test_a_campaign_keeps_its_rate_while_the_same_number_answers_customers(
        business_factory: BusinessFactory, producer: AsyncProducer, settings: CoreSettings,
        sim: httpx.AsyncClient, stack: LocalStack) -> None:
    """Replies go first; the campaign gets the rest of the number's rate, and a reply that an idle worker takes at
    once does not pause the bulk lane. Before, every batch holding a reply paused it, and with replies coming faster
    than a consume's wait it stayed paused: at 45 replies a second a 1,000 msg/s number sent none of its campaign
    once the dispatcher's bulk buffer ran dry (``bench dispatch``)."""
    assert BULK > 2 * TEST_BULK_BUFFER  # the bulk partitions must be fetched from while the replies come
    business = await business_factory("lanes", throughput=THROUGHPUT)
    pnid, tenant = business.phone_number_id, business.tenant_id
    await start_campaign(producer, settings, sim, tenant, pnid, BULK)
    paused_before, began = await _paused_for_replies(stack), time.monotonic()
    await queue_replies(producer, settings, tenant, pnid, REPLIES, REPLY_EVERY_S)
    paused = await _paused_for_replies(stack) - paused_before
    replying = time.monotonic() - began
    assert paused < 0.25 * replying, f"bulk paused for replies {paused:.1f} s of {replying:.1f} s"

    async def replies_sent() -> list[dict[str, Any]] | None:
        accepted = await accepted_sends(sim, pnid)
        return accepted if sum(r["recipient"].startswith("1888") for r in accepted) == REPLIES else None

    accepted = await wait_for(replies_sent, timeout=60, what="every reply")
    replies = sorted(r["time"] for r in accepted if r["recipient"].startswith("1888"))
    start, end = replies[0], replies[-1]
    bulk = [r["time"] for r in accepted if r["recipient"].startswith("1777")]
    assert any(t > end for t in bulk) or len(bulk) < BULK, "the backlog ran out before the replies ended"
    during = sum(start <= t <= end for t in bulk)
    room = THROUGHPUT / (1 + float(TEST_RATE_MARGIN)) * (end - start) - REPLIES  # the rate the replies leave
    assert during >= 0.4 * room, f"{during} bulk sends in {end - start:.1f} s of replies (room for {room:.0f})"

    async def campaign_done() -> bool:
        return sum(r["recipient"].startswith("1777") for r in await accepted_sends(sim, pnid)) == BULK

    await wait_for(campaign_done, timeout=60, what="the whole backlog")


WIRE_S, WIRE_BULK = 0.3, 400  # Meta's answer time (0.1-0.35 s from most places), and a campaign's sends


async def test_a_fast_number_keeps_its_rates_worth_of_calls_on_the_wire_while_meta_answers_slowly(
        business_factory: BusinessFactory, producer: AsyncProducer, settings: CoreSettings,
        sim: httpx.AsyncClient) -> None:
    """A number sending r messages a second to a Meta that answers in L seconds has r x L calls on the wire. The
    dispatcher's connections to Graph used to be 32, sized against the simulator's instant answers: with Meta
    answering in 0.2 s a 1,000 msg/s number got 160 a second (``bench dispatch``, ``rate1000_meta``). Now the workers
    bound it, not the connections: calls that arrive within one answer time are all on the wire at once."""
    business = await business_factory("wire", throughput=1000)
    pnid = business.phone_number_id
    slow = f"/_sim/faults/{pnid}"
    (await sim.post(slow, json={"latency_ms": WIRE_S * 1000})).raise_for_status()
    try:
        await asyncio.gather(*(_queue(producer, settings, business.tenant_id, pnid, f"1999{i:07d}", "bulk")
                               for i in range(WIRE_BULK)))

        async def all_sent() -> list[float] | None:
            times = sorted(r["time"] for r in await accepted_sends(sim, pnid))  # when each call reached the simulator
            return times if len(times) == WIRE_BULK else None

        arrivals = await wait_for(all_sent, timeout=60, what="the campaign's sends")
    finally:
        await sim.delete(slow)
    on_wire = max(bisect.bisect_left(arrivals, t + WIRE_S) - i for i, t in enumerate(arrivals))
    bulk_workers = TEST_CONCURRENCY - TEST_CONCURRENCY // INTERACTIVE_SHARE
    assert on_wire >= 0.6 * bulk_workers, f"at most {on_wire} calls on the wire, with {bulk_workers} bulk workers"
    assert over_limit_windows(arrivals, 1000) == 0


SLOW, SLOW_BULK = 80, 600  # a new number's campaign: 8 s of its sends, more than the bulk workers and buffer hold
FAST, FAST_BULK = 200, 300  # another tenant's, queued right after it


async def test_a_slow_numbers_campaign_leaves_the_workers_to_another_tenants(
        business_factory: BusinessFactory, producer: AsyncProducer, settings: CoreSettings,
        sim: httpx.AsyncClient) -> None:
    """A worker holds a bulk request until its number's rate lets it go. Once, a campaign on an 80 msg/s number took
    every bulk worker, and another tenant's campaign on a 1,000 msg/s number, queued after it, sent nothing for the
    10 s the first took (``bench dispatch``). Now a number's requests hold at most half a second of its rate."""
    assert SLOW_BULK >= 3 * TEST_BULK_BUFFER  # the slow campaign's requests also fill the buffer many times
    slow, fast = await business_factory("slow", throughput=SLOW), await business_factory("fast", throughput=FAST)
    await asyncio.gather(*(_queue(producer, settings, slow.tenant_id, slow.phone_number_id, f"1777{i:07d}", "bulk")
                           for i in range(SLOW_BULK)))
    await asyncio.gather(*(_queue(producer, settings, fast.tenant_id, fast.phone_number_id, f"1888{i:07d}", "bulk")
                           for i in range(FAST_BULK)))

    before = await _sent_before(sim, slow.phone_number_id, SLOW_BULK, fast.phone_number_id, FAST_BULK)
    assert before < SLOW_BULK / 2, f"the fast campaign waited for the slow one ({before} of its sends first)"


SLOW_REPLIES, FAST_REPLIES = 400, 200  # a burst of customers on a new number, then another tenant's


async def test_a_burst_of_replies_on_a_slow_number_leaves_the_workers_to_another_tenants_replies(
        business_factory: BusinessFactory, producer: AsyncProducer, settings: CoreSettings,
        sim: httpx.AsyncClient) -> None:
    """A worker holds a reply until its number's rate lets it go, so a burst of 400 replies on an 80 msg/s number took
    all 128 workers, and the 272 beyond them stood in line before another tenant's replies: its last went 3.9 s after
    the burst's first, 286 of the burst before it. Now a number's replies, as its bulk sends, hold at most half a
    second of its rate: 1.1 s, 81 of the burst before it."""
    slow = await business_factory("slow-replies", throughput=SLOW)
    fast = await business_factory("fast-replies", throughput=FAST)
    await asyncio.gather(*(_queue(producer, settings, slow.tenant_id, slow.phone_number_id, f"1555{i:07d}",
                                  "interactive") for i in range(SLOW_REPLIES)))
    await asyncio.gather(*(_queue(producer, settings, fast.tenant_id, fast.phone_number_id, f"1666{i:07d}",
                                  "interactive") for i in range(FAST_REPLIES)))

    before = await _sent_before(sim, slow.phone_number_id, SLOW_REPLIES, fast.phone_number_id, FAST_REPLIES)
    assert before < SLOW_REPLIES / 2, f"the other tenant's replies waited for the burst ({before} of its replies first)"



HELD_BULK, AFTER_HELD = 600, 100  # a campaign's sends read while its account waits for re-authorisation, and another's


async def test_a_held_accounts_backlog_neither_stops_other_tenants_campaigns_nor_is_checked_send_by_send(
        business_factory: BusinessFactory, producer: AsyncProducer, settings: CoreSettings,
        sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack) -> None:
    """A number whose account cannot send (Meta refused its token, or the business removed Aerostic) holds its sends
    until it is reconnected. Once, each held send was checked again on its own every few seconds (here every 0.5 s),
    each check a read of PostgreSQL, and all of them counted toward the bulk requests in memory that could go now:
    past ``bulk_buffer`` the dispatcher stopped reading bulk, and another tenant's campaign queued behind them waited
    for the reconnection. Now one of the number's sends checks the account again, its others wait aside, read past."""
    assert 2 * TEST_BULK_BUFFER < HELD_BULK < 4 * TEST_BULK_BUFFER  # past the buffer, within what may be read past
    held = await business_factory("held", throughput=1000)  # its bound, 500, is above the bulk workers
    other = await business_factory("after-held", throughput=FAST)
    async with db.begin() as conn:
        await set_status(conn, tenant_id=held.tenant_id, waba_id=held.waba_id, status="needs_reauth", reason="test")
    read_before, checks_before = await _bulk_read(stack, settings), await _held_checks(stack)
    began = time.monotonic()
    await asyncio.gather(*(_queue(producer, settings, held.tenant_id, held.phone_number_id, f"1444{i:07d}", "bulk")
                           for i in range(HELD_BULK)))

    async def held_read() -> bool:  # the other campaign comes once the held sends are read, as in a campaign
        return await _bulk_read(stack, settings) - read_before >= 2 * TEST_BULK_BUFFER

    await wait_for(held_read, timeout=30, what="the held sends to be read")
    await asyncio.gather(*(_queue(producer, settings, other.tenant_id, other.phone_number_id, f"1333{i:07d}", "bulk")
                           for i in range(AFTER_HELD)))

    async def others_sent() -> bool:
        return len(await accepted_sends(sim, other.phone_number_id)) == AFTER_HELD

    await wait_for(others_sent, timeout=30, what="the other tenant's campaign")
    assert not await accepted_sends(sim, held.phone_number_id)
    held_for = time.monotonic() - began
    # Each send worked on as the hold began found it (at most the workers), then one each 0.5 s: not one a send.
    checks = await _held_checks(stack) - checks_before
    workers = TEST_CONCURRENCY
    assert checks <= workers + 2 * held_for / 0.5 + 4, f"{checks:.0f} checks of the held account in {held_for:.1f} s"

    async with db.begin() as conn:
        await set_status(conn, tenant_id=held.tenant_id, waba_id=held.waba_id, status="connected", reason=None)

    async def held_sent() -> list[dict[str, Any]] | None:
        accepted = await accepted_sends(sim, held.phone_number_id)
        return accepted if len(accepted) >= HELD_BULK else None

    accepted = await wait_for(held_sent, timeout=30, what="the held sends, once reconnected")
    assert sorted(r["recipient"] for r in accepted) == [f"1444{i:07d}" for i in range(HELD_BULK)]  # each once


async def _held_checks(stack: LocalStack) -> float:
    return total(await scrape(stack, "dispatcher"), "aerostic_dispatcher_held_checks_total")


async def _bulk_read(stack: LocalStack, settings: CoreSettings) -> float:
    """The records the dispatcher has read from ``outbound.bulk``."""
    return total(await scrape(stack, "dispatcher"), "aerostic_stream_records_total",
                 topic=OUTBOUND_BULK.full_name(settings.topic_prefix))
