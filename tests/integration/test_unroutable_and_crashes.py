"""Nothing is lost: unknown numbers are held and replayed; a killed worker or a dead broker loses nothing."""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from metasim import payloads
from schemas.catalogue import INBOUND, UNROUTABLE, WEBHOOKS_RAW
from stack.launcher import LocalStack
from tenants.commands import attach_number, create_tenant
from tenants.replay import replay_unroutable
from tests.integration.helpers import (
    SECRET,
    Poster,
    TopicTail,
    committed_offsets,
    fresh_id,
    rows,
    scalar,
    topic_positions,
    topic_records,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("pipeline_ready")


async def test_unknown_number_is_held_then_replayed_once_after_attach(
        stack: LocalStack, settings: CoreSettings, producer: AsyncProducer, post: Poster, db: AsyncEngine) -> None:
    pnid, waba = fresh_id(), fresh_id()
    wamid = payloads.new_wamid()
    held = TopicTail(stack.kafka, UNROUTABLE.name)
    body = payloads.customer_text(pnid, waba, "15552220000", "anyone there?", wamid=wamid)
    assert (await post(body)).status_code == 200
    try:
        await wait_for(lambda: asyncio.to_thread(held.count, wamid.encode()), timeout=30,
                       what="the event in wa.unroutable")
    finally:
        held.close()
    assert await scalar(db, "SELECT count(*) FROM messages WHERE wamid = :w", w=wamid) == 0

    tenant_id = await create_tenant(settings, "late owner")
    replayed = await attach_number(settings, producer, tenant_id=tenant_id, phone_number_id=pnid, waba_id=waba)
    assert replayed == 1
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE wamid = :w AND tenant_id = :t",
                                  w=wamid, t=tenant_id), what="the replayed message")

    # Replaying again (the operator command) stores nothing twice.
    assert await replay_unroutable(settings, producer, {pnid}, tenant_id=tenant_id) == 1
    marker = payloads.customer_text(pnid, waba, "15552220000", "marker")
    assert (await post(marker)).status_code == 200
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND text = 'marker'",
                                  t=tenant_id), what="the marker")
    assert await scalar(db, "SELECT count(*) FROM messages WHERE wamid = :w", w=wamid) == 1


async def _burst_stages(stack: LocalStack, db: AsyncEngine, tenant_id: str) -> dict[str, object]:
    """Which of the burst's messages each stage holds, to name the stage that lost some."""
    raw = await asyncio.to_thread(topic_records, stack, WEBHOOKS_RAW.name)
    inbound = await asyncio.to_thread(topic_records, stack, INBOUND.name)
    texts = {
        "raw": {m.group(1) for v in raw if (m := re.search(rb'"burst (\d+)"', v))},
        "inbound": {json.loads(v)["text"].split()[1].encode() for v in inbound
                    if json.loads(v).get("tenant_id") == tenant_id},
        "stored": {str(r[0]).split()[1].encode() for r in (await rows(
            db, "SELECT text FROM messages WHERE tenant_id = :t", t=tenant_id))},
    }
    every = {str(i).encode() for i in range(2000)}
    report: dict[str, object] = {stage: (len(have), sorted(int(i) for i in every - have)[:60])
                                 for stage, have in texts.items()}
    lost = every - texts["inbound"]
    located = await asyncio.to_thread(topic_positions, stack, WEBHOOKS_RAW.name)
    report["lost_at"] = sorted((p, o) for p, o, v in located if (m := re.search(rb'"burst (\d+)"', v))
                               and m.group(1) in lost)[:40]
    report["committed"] = await asyncio.to_thread(committed_offsets, stack, "aerostic-router", WEBHOOKS_RAW.name)
    return report


async def test_sigkill_of_workers_mid_burst_stores_every_message_once(
        stack: LocalStack, tenant_factory, post: Poster, db: AsyncEngine) -> None:  # type: ignore[no-untyped-def]
    tenant = await tenant_factory("burst")
    total, killed_at = 2000, 700
    bodies = [payloads.customer_text(tenant.phone_number_id, tenant.waba_id, f"1555{i % 40:07d}", f"burst {i}")
              for i in range(total)]
    semaphore = asyncio.Semaphore(32)

    async def send(body: dict) -> int:  # type: ignore[type-arg]
        async with semaphore:
            return (await post(body)).status_code

    first = await asyncio.gather(*(send(b) for b in bodies[:killed_at]))
    stack.children["streams"].kill()
    stack.children["projector"].kill()
    rest = await asyncio.gather(*(send(b) for b in bodies[killed_at:]))
    assert set(first) | set(rest) == {200}
    stack.start_streams()
    stack.start_projector()

    async def stored() -> int | None:
        count = await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t", t=tenant.tenant_id)
        return count if count >= total else None

    try:
        await wait_for(stored, timeout=120, what=f"{total} messages after the crash")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; where they are: {await _burst_stages(stack, db, tenant.tenant_id)}") from exc
    assert await scalar(db, "SELECT count(DISTINCT wamid) FROM messages WHERE tenant_id = :t",
                        t=tenant.tenant_id) == total


async def test_broker_down_gives_503_then_the_same_delivery_succeeds() -> None:
    """Its own broker and ingress, so the shared stack is not disturbed."""
    local = LocalStack(root=Path(tempfile.mkdtemp(prefix="aerostic-broker-down-")), extra_env={
        "AEROSTIC_APP_SECRETS": SECRET, "AEROSTIC_DELIVERY_TIMEOUT_MS": "2000"}, max_partitions=None)
    try:
        from stack.services import start_broker
        from stack.topics import create_topics

        local.services["kafka"] = start_broker(local.log_dir)
        local.kafka = local.services["kafka"].url
        await asyncio.to_thread(create_topics, local.kafka)
        url = await asyncio.to_thread(local.start_ingress)
        raw, headers = payloads.signed(payloads.customer_text("1", "2", "3", "hello"), SECRET)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (await client.post("/webhooks/meta", content=raw, headers=headers)).status_code == 200
            local.services["kafka"].stop()
            assert (await client.post("/webhooks/meta", content=raw, headers=headers)).status_code == 503
            await asyncio.to_thread(local.restart_broker)  # memory storage: the broker starts empty

            async def delivered() -> bool:
                response = await client.post("/webhooks/meta", content=raw, headers=headers)
                return response.status_code == 200

            await wait_for(delivered, timeout=60, what="the redelivery to be accepted")
            stored = await asyncio.to_thread(topic_records, local, WEBHOOKS_RAW.name)
            assert raw in stored
    finally:
        local.stop()
