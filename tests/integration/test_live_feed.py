"""``GET /v1/live`` against the real stack: a tenant's events and nobody else's, roles, resume, slow clients."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from schemas.campaigns import CampaignProgress
from schemas.catalogue import AGENTS_PRESENCE, CAMPAIGNS_PROGRESS
from schemas.presence import AgentPresence
from stack.launcher import LocalStack
from tests.integration.helpers import BusinessFactory, customer_writes, fresh_id, wait_for
from tests.integration.live_client import LiveReader, live, web_process
from tests.integration.people import person

ASYNC = pytest.mark.asyncio(loop_scope="session")


async def presence_records(producer: AsyncProducer, settings: CoreSettings, tenant_id: str,
                           user_ids: list[str]) -> None:
    """``agents.presence`` records for ``tenant_id`` (the feed's own topic: nothing else reacts to them)."""
    topic = AGENTS_PRESENCE.full_name(settings.topic_prefix)
    for user_id in user_ids:  # one at a time: their order on the one partition is the order sent
        await producer.send(topic, AgentPresence(event_id=str(uuid.uuid4()), tenant_id=tenant_id, user_id=user_id,
                                                 presence="online", at=datetime.now(UTC)).encode(), tenant_id.encode())


@ASYNC
async def test_a_conversation_reaches_its_tenant_only(api: httpx.AsyncClient, sim: httpx.AsyncClient,
                                                       db: AsyncEngine, settings: CoreSettings,
                                                       producer: AsyncProducer,
                                                       business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("live feed"), await business_factory("live feed other")
    admin, agent = await person(api, db, tenant.tenant_id, "admin"), await person(api, db, tenant.tenant_id)
    outsider = await person(api, db, other.tenant_id, "admin")
    streams = [await live(api, p.token) for p in (admin, agent, outsider)]
    admin_feed, agent_feed, outsider_feed = streams
    try:
        wa_id = f"91{fresh_id()[:10]}"
        key = tenant.conversation(wa_id)
        wamid = await customer_writes(sim, db, tenant, wa_id, "I need help with my order")
        for feed in (admin_feed, agent_feed):
            inbound = await feed.wait("message.in", wamid=wamid)
            assert inbound["conversation_key"] == key
            assert inbound["data"]["wa_id"] == wa_id and inbound["data"]["text"] == "I need help with my order"
            assert inbound["data"]["type"] == "text" and inbound["id"] and inbound["at"]
        # The agent answers: the queued message, then its ticks (accepted, then Meta's sent, delivered, read).
        sent = await api.post(f"/v1/conversations/{key}/reply", headers=agent.auth,
                              json={"message": {"type": "text", "text": {"body": "On it!"}}})
        assert sent.status_code == 202, sent.text
        out = await agent_feed.wait("message.out", author="agent", text="On it!")
        assert out["conversation_key"] == key and out["data"]["requested_by"] == agent.user_id
        message_id = out["data"]["message_id"]
        accepted = await agent_feed.wait("message.status", message_id=message_id, status="accepted")
        wamid_out = accepted["data"]["wamid"]
        for status in ("sent", "delivered", "read"):
            await admin_feed.wait("message.status", wamid=wamid_out, status=status)
        await admin_feed.wait("conversation", state="agent", assignee_id=agent.user_id)

        # A campaign's progress: the admin sees it; the agent's stream passes it by (a later event arrives).
        campaign_id = str(uuid.uuid4())
        await producer.send(CAMPAIGNS_PROGRESS.full_name(settings.topic_prefix), CampaignProgress(
            event_id=str(uuid.uuid4()), campaign_id=campaign_id, tenant_id=tenant.tenant_id, state="running",
            funnel={"queued": 3}, at=datetime.now(UTC)).encode(), campaign_id.encode())
        progress = await admin_feed.wait("campaign", campaign_id=campaign_id)
        assert progress["data"]["state"] == "running" and progress["data"]["funnel"] == {"queued": 3}
        changed = await api.put("/v1/agents/me/presence", headers=agent.auth, json={"status": "online"})
        assert changed.status_code == 200, changed.text
        await agent_feed.wait("presence", user_id=agent.user_id, presence="online")
        assert agent_feed.of("campaign") == []

        # The other tenant saw none of it: only its own presence change, which came after everything above.
        mine = await api.put("/v1/agents/me/presence", headers=outsider.auth, json={"status": "away"})
        assert mine.status_code == 200, mine.text
        await outsider_feed.wait("presence", user_id=outsider.user_id, presence="away")
        assert [e["type"] for e in outsider_feed.events] == ["presence"]
        assert not any(tenant.phone_number_id in json.dumps(e) for e in outsider_feed.events)
    finally:
        for feed in streams:
            await feed.close()


@ASYNC
async def test_credentials_are_required(api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer aes_not-a-session"}, {"Cookie": "aerostic_session=aes_nope"}):
        response = await api.get("/v1/live", headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")


@ASYNC
async def test_a_resumed_stream_gets_exactly_what_it_missed(api: httpx.AsyncClient, db: AsyncEngine,
                                                             settings: CoreSettings, producer: AsyncProducer,
                                                             business_factory: BusinessFactory) -> None:
    tenant = await business_factory("live resume")
    admin = await person(api, db, tenant.tenant_id, "admin")
    before = [f"before-{i}" for i in range(5)]
    missed = [f"missed-{i}" for i in range(40)]
    after = [f"after-{i}" for i in range(5)]
    first = await live(api, admin.token)
    try:
        await presence_records(producer, settings, tenant.tenant_id, before)
        await first.wait("presence", user_id=before[-1])
    finally:
        await first.close()
    assert [e["data"]["user_id"] for e in first.events] == before
    cursor = first.events[-1]["id"]
    await presence_records(producer, settings, tenant.tenant_id, missed)  # produced while nobody listens
    resumed = await live(api, admin.token, last_event_id=cursor)
    try:
        await presence_records(producer, settings, tenant.tenant_id, after)
        await resumed.wait("presence", user_id=after[-1])
    finally:
        await resumed.close()
    assert [e["data"]["user_id"] for e in resumed.events] == missed + after  # none missed, none repeated
    assert len({e["id"] for e in resumed.events}) == len(resumed.events)

    # A cursor that is not one of ours: a reset event, then the stream goes on from now.
    odd = await live(api, admin.token, last_event_id="not-a-cursor")
    try:
        reset = await odd.wait("reset")
        assert reset["data"]["reason"]
    finally:
        await odd.close()


def _raw_stream(stack: LocalStack, token: str) -> socket.socket:
    """A stream opened by a client that never reads it (a tiny receive buffer, so the server's fills fast)."""
    url = urlsplit(stack.ingress_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((url.hostname or "127.0.0.1", url.port or 80))
    sock.sendall(f"GET /v1/live HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    return sock


def _drain(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sent, and whether it closed the connection within ``timeout`` in all (heartbeats
    keep an open stream talking, so the deadline is on the whole drain, not on each read)."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(1 << 20)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
    except TimeoutError:
        pass
    return b"".join(chunks), False


@ASYNC
async def test_a_client_that_stops_reading_is_cut_off(api: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
                                                      settings: CoreSettings, producer: AsyncProducer,
                                                      business_factory: BusinessFactory) -> None:
    tenant = await business_factory("live slow client")
    admin = await person(api, db, tenant.tenant_id, "admin")
    fast = await live(api, admin.token)
    slow = _raw_stream(stack, admin.token)
    try:
        # Big records fill the socket buffers, then more than the server queues for one browser (1,000).
        big = [f"big-{i}-" + "x" * 300_000 for i in range(30)]
        # The writer takes what waits in one go: whatever it took before the socket filled, the small records
        # that come after it are still more than 1,000.
        small = [f"small-{i}" for i in range(2_200)]
        await presence_records(producer, settings, tenant.tenant_id, big)
        await asyncio.gather(*(presence_records(producer, settings, tenant.tenant_id, small[i::10])
                               for i in range(10)))
        await wait_for(lambda: _count(fast, len(big) + len(small)), timeout=120,
                       what="every event on the stream that keeps reading")
        received, closed = await asyncio.to_thread(_drain, slow, 60.0)
        assert closed, "the server kept the stream of a client that stopped reading"
        assert received.count(b"\ndata: ") < len(big) + len(small)
        assert not fast.ended
    finally:
        slow.close()
        await fast.close()
    got = [e["data"]["user_id"] for e in fast.events]
    assert sorted(got) == sorted(big + small) and len(got) == len(set(got))


async def _count(reader: LiveReader, n: int) -> bool | None:
    return True if len(reader.events) >= n else None


@ASYNC
async def test_another_process_resumes_from_kafka_what_its_ring_never_held(
        api: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack, settings: CoreSettings,
        producer: AsyncProducer, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("live resume elsewhere")
    admin = await person(api, db, tenant.tenant_id, "admin")
    first = await live(api, admin.token)
    try:
        await presence_records(producer, settings, tenant.tenant_id, ["seen"])
        await first.wait("presence", user_id="seen")
    finally:
        await first.close()
    cursor = first.events[-1]["id"]
    missed = [f"missed-{i}" for i in range(25)]
    await presence_records(producer, settings, tenant.tenant_id, missed)
    # A process started after those records: its feed begins past them, so they come from Kafka (the gap).
    child, other = await web_process(stack, "ingress-live-b")
    try:
        resumed = await live(other, admin.token, last_event_id=cursor)
        try:
            await presence_records(producer, settings, tenant.tenant_id, ["later"])
            await resumed.wait("presence", user_id="later")
        finally:
            await resumed.close()
        assert [e["data"]["user_id"] for e in resumed.events] == [*missed, "later"]
        # Its ids resume on the first process as exactly: nothing of it is sent again.
        back = await live(api, admin.token, last_event_id=resumed.events[len(missed) - 1]["id"])
        try:
            await back.wait("presence", user_id="later")
            await presence_records(producer, settings, tenant.tenant_id, ["last"])
            await back.wait("presence", user_id="last")
        finally:
            await back.close()
        assert [e["data"]["user_id"] for e in back.events] == ["later", "last"]
    finally:
        await other.aclose()
        child.stop()

    # A process that reads no gap back (limit 0) resets a stream it cannot resume, and goes on from now.
    child, strict = await web_process(stack, "ingress-live-c", live_gap_max_records="0")
    try:
        reset = await live(strict, admin.token, last_event_id=cursor)
        try:
            event = await reset.wait("reset")
            assert "gap" in event["data"]["reason"]
            await presence_records(producer, settings, tenant.tenant_id, ["after reset"])
            await reset.wait("presence", user_id="after reset")
            assert [e["type"] for e in reset.events] == ["reset", "presence"]
        finally:
            await reset.close()
    finally:
        await strict.aclose()
        child.stop()
