"""The interactive lane in a dispatcher of its own (``--scale replies=1``, ``AEROSTIC_LANES``), through the real broker,
Redis and simulator: each lane's sends go once, by its own process, and a campaign on the same number keeps going.

The suite's dispatcher is stopped for the test and replaced by a pair in the same consumer group (one reading
``outbound.interactive`` alone, one the rest); the suite's is started again after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from stack.launcher import LocalStack
from tests.integration.helpers import TEST_RATE_MARGIN, BusinessFactory, scrape, start_dispatcher, total, wait_for
from tests.integration.test_lanes import accepted_sends, queue_replies, start_campaign

pytestmark = pytest.mark.usefixtures("pipeline_ready")

THROUGHPUT = 200
BULK = 1000
REPLIES = 60
REPLY_EVERY_S = 0.02
SENDS = "aerostic_dispatcher_sends_total"


@pytest.fixture
async def split_dispatchers(stack: LocalStack) -> AsyncIterator[tuple[str, str]]:
    """The suite's dispatcher replaced by one for replies and one for the rest; their child names."""
    stack.stop_in_turn(["dispatcher"])
    stack.scale["replies"] = 1
    try:
        await asyncio.to_thread(start_dispatcher, stack)
        yield "dispatcher-replies", "dispatcher"
    finally:
        stack.stop_in_turn(["dispatcher-replies", "dispatcher"])
        del stack.scale["replies"]
        await asyncio.to_thread(start_dispatcher, stack)


async def test_replies_go_through_their_own_dispatcher_while_another_sends_the_campaign(
        split_dispatchers: tuple[str, str], business_factory: BusinessFactory, producer: AsyncProducer,
        settings: CoreSettings, sim: httpx.AsyncClient, stack: LocalStack) -> None:
    replies_process, bulk_process = split_dispatchers
    business = await business_factory("split-lanes", throughput=THROUGHPUT)
    pnid, tenant = business.phone_number_id, business.tenant_id
    await start_campaign(producer, settings, sim, tenant, pnid, BULK)
    await queue_replies(producer, settings, tenant, pnid, REPLIES, REPLY_EVERY_S)

    async def all_sent() -> list[dict[str, Any]] | None:
        accepted = await accepted_sends(sim, pnid)
        return accepted if len(accepted) >= BULK + REPLIES else None

    accepted = await wait_for(all_sent, timeout=60, what="the campaign and the replies")
    recipients = sorted(r["recipient"] for r in accepted)
    assert recipients == sorted([f"1777{i:07d}" for i in range(BULK)] + [f"1888{i:07d}" for i in range(REPLIES)])
    replies = sorted(r["time"] for r in accepted if r["recipient"].startswith("1888"))
    bulk = sorted(r["time"] for r in accepted if r["recipient"].startswith("1777"))
    assert bulk[-1] > replies[-1], "the campaign ran out before the replies ended: they were not behind it"
    room = THROUGHPUT / (1 + float(TEST_RATE_MARGIN)) * (replies[-1] - replies[0]) - REPLIES
    during = sum(replies[0] <= t <= replies[-1] for t in bulk)
    assert during >= 0.4 * room, f"{during} bulk sends while the replies went (room for {room:.0f})"
    # Each went through its own lane's process: the replies' process read no campaign, the other no reply.
    one, other = await scrape(stack, replies_process), await scrape(stack, bulk_process)
    assert total(one, SENDS, lane="interactive", result="accepted") == REPLIES
    assert total(one, SENDS, lane="bulk") == 0
    assert total(other, SENDS, lane="bulk", result="accepted") == BULK
    assert total(other, SENDS, lane="interactive") == 0
