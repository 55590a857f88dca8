"""At most one Graph call per idempotency key: redelivered requests, a killed dispatcher, ambiguous timeouts."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from config import redis_keys
from schemas.catalogue import OUTBOUND_INTERACTIVE, OUTBOUND_RESULTS
from schemas.outbound import OutboundRequest, OutboundResult
from stack.launcher import LocalStack
from tests.integration.helpers import (
    Business,
    BusinessFactory,
    rows,
    scalar,
    sim_counts,
    start_dispatcher,
    topic_records,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("pipeline_ready")


TEMPLATE = {"type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}


def _requests(business: Business, count: int, message: dict[str, Any] | None = None) -> list[OutboundRequest]:
    """Sends to distinct recipients (texts by default), as the conversation processor would emit them."""
    now, window = datetime.now(UTC), time.time() + 3600
    out = []
    for i in range(count):
        message_id = str(uuid.uuid4())
        out.append(OutboundRequest(
            event_id=message_id, tenant_id=business.tenant_id, message_id=message_id,
            idempotency_key=f"{business.tenant_id}:{message_id}", phone_number_id=business.phone_number_id,
            to=f"1777{random.randrange(10**6, 10**7)}{i % 10}",
            message=message or {"type": "text", "text": {"body": f"n{i}"}}, window_until=window, created_at=now))
    return out


def _produce(stack: LocalStack, requests: list[OutboundRequest]) -> None:
    producer = Producer({"bootstrap.servers": stack.kafka, "acks": "all", "log_level": 3})
    for request in requests:
        producer.produce(OUTBOUND_INTERACTIVE.name, request.encode(), request.conversation_key.encode())
    assert producer.flush(30) == 0


async def _markers(sim: httpx.AsyncClient, requests: list[OutboundRequest]) -> dict[str, int]:
    by_marker = (await sim_counts(sim))["by_marker"]
    return {r.idempotency_key: by_marker.get(r.idempotency_key, 0) for r in requests}


def _results(stack: LocalStack, requests: list[OutboundRequest]) -> dict[str, list[OutboundResult]]:
    wanted = {r.message_id for r in requests}
    found: dict[str, list[OutboundResult]] = {m: [] for m in wanted}
    for raw in topic_records(stack, OUTBOUND_RESULTS.name, idle_s=1.0):
        result = OutboundResult.decode(raw)
        if result.message_id in wanted:
            found[result.message_id].append(result)
    return found


async def test_a_request_produced_twice_reaches_meta_once(
        stack: LocalStack, business_factory: BusinessFactory, sim: httpx.AsyncClient) -> None:
    business = await business_factory("twice")
    requests = _requests(business, 5)
    await asyncio.to_thread(_produce, stack, requests)
    await asyncio.to_thread(_produce, stack, requests)

    async def all_replayed() -> dict[str, list[OutboundResult]] | None:
        found = await asyncio.to_thread(_results, stack, requests)
        return found if all(len(v) >= 2 for v in found.values()) else None

    results = await wait_for(all_replayed, timeout=60, what="a result for each copy")
    assert set((await _markers(sim, requests)).values()) == {1}
    for copies in results.values():
        assert {r.outcome for r in copies} == {"accepted"} and len({r.wamid for r in copies}) == 1
        assert sum(r.replayed for r in copies) == len(copies) - 1


async def test_a_dispatcher_killed_mid_queue_sends_each_key_once(
        stack: LocalStack, business_factory: BusinessFactory, sim: httpx.AsyncClient) -> None:
    business = await business_factory("killed", throughput=80)
    requests = _requests(business, 500)
    await asyncio.to_thread(_produce, stack, requests)

    async def some_sent() -> bool:
        return sum(1 for n in (await _markers(sim, requests)).values() if n) >= 100

    await wait_for(some_sent, timeout=60, what="the first 100 sends")
    stack.children["dispatcher"].kill()
    start_dispatcher(stack)

    async def all_sent() -> bool:
        return all((await _markers(sim, requests)).values())

    await wait_for(all_sent, timeout=120, what="all 500 sends after the restart")
    markers = await _markers(sim, requests)
    results = await asyncio.to_thread(_results, stack, requests)
    ambiguous = {r.idempotency_key for copies in results.values() for r in copies if r.ambiguous}
    twice = {key for key, n in markers.items() if n > 1}
    assert twice <= ambiguous, f"sent twice without being counted as ambiguous: {sorted(twice - ambiguous)}"
    assert max(markers.values()) <= 2
    # Only calls on the wire at the kill are unknown, not requests waiting for a rate slot.
    assert len(ambiguous) <= 20, f"{len(ambiguous)} outcomes unknown after one kill"
    assert all(any(r.outcome == "accepted" for r in copies) for copies in results.values())


async def test_a_timeout_after_meta_accepted_is_retried_once_and_counted(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, stack: LocalStack,
        db: AsyncEngine) -> None:
    business = await business_factory("ambiguous")
    await sim.post(f"/_sim/faults/{business.phone_number_id}",
                   json={"timeout_after_accept_rate": 1.0, "hang_s": 5, "seed": 1})
    await sim.post("/_sim/templates", json={"waba_id": business.waba_id, "name": "hello_world",
                                            "language": "en_US"})
    requests = _requests(business, 2, TEMPLATE)  # templates: Meta delivers them outside the window too
    await asyncio.to_thread(_produce, stack, requests)

    async def decided() -> dict[str, list[OutboundResult]] | None:
        found = await asyncio.to_thread(_results, stack, requests)
        return found if all(found.values()) else None

    results = await wait_for(decided, timeout=90, what="a verdict on each ambiguous send")
    await sim.delete(f"/_sim/faults/{business.phone_number_id}")
    assert set((await _markers(sim, requests)).values()) == {2}  # the one allowed repeat, and no more
    for copies in results.values():
        assert copies[-1].ambiguous and copies[-1].outcome == "failed"
        assert "ambiguous_outcome" in (copies[-1].error_title or "")

    async def resolved_by_meta_statuses() -> Any:
        return await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND message_id IS NOT NULL "
                                "AND status IN ('sent', 'delivered', 'read')", t=business.tenant_id)

    # Meta's status webhooks carry our key: the messages end up with their real status after all.
    try:
        await wait_for(resolved_by_meta_statuses, timeout=30, what="statuses to resolve the outcome")
    except AssertionError as exc:
        found = await rows(db, "SELECT message_id, wamid, status, idempotency_key FROM messages WHERE tenant_id = :t",
                           t=business.tenant_id)
        statuses = await rows(db, "SELECT wamid, status FROM message_statuses WHERE tenant_id = :t",
                              t=business.tenant_id)
        raise AssertionError(f"{exc}: messages {found}, statuses {statuses}") from exc



async def test_a_redelivery_after_redis_lost_its_records_is_sent_again_but_counted(
        stack: LocalStack, business_factory: BusinessFactory, sim: httpx.AsyncClient) -> None:
    business = await business_factory("redis lost")
    requests = _requests(business, 1)
    await asyncio.to_thread(_produce, stack, requests)

    async def results(count: int) -> list[OutboundResult] | None:
        found = (await asyncio.to_thread(_results, stack, requests))[requests[0].message_id]
        return found if len(found) >= count else None

    first = (await wait_for(lambda: results(1), timeout=60, what="the first result"))[0]
    assert first.outcome == "accepted" and not first.ambiguous
    redis = Redis.from_url(stack.redis_url)
    try:  # Redis restarted empty: the record and the epoch mark are gone
        await redis.delete(redis_keys.idempotency(requests[0].idempotency_key), redis_keys.idempotency_epoch())
    finally:
        await redis.aclose()
    await asyncio.to_thread(_produce, stack, requests)  # the request comes again (offsets not yet committed)
    second = (await wait_for(lambda: results(2), timeout=60, what="the redelivered request's result"))[1]
    assert second.outcome == "accepted" and second.ambiguous  # sent again, and counted as such
    assert (await _markers(sim, requests))[requests[0].idempotency_key] == 2
