"""Tenants' outbound webhooks through the real stack: the deliverer process consumes the topics, signs, retries,
keeps order per conversation, isolates endpoints from one another and from Meta's sends, and redelivers from Kafka.

The endpoints are a local receiver in the test process (``tests.unit.deliverer.receiver``) on 127.0.0.1; the test
stack allows loopback receivers (``AEROSTIC_WEBHOOKS_ALLOW_LOOPBACK``), which production refuses (unit-tested in
``tests/unit/webhooks/test_urls.py`` and ``tests/unit/deliverer/test_http.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from schemas.catalogue import CONVERSATIONS_EVENTS
from schemas.conversation import ConversationChanged
from tests.integration.helpers import Business, BusinessFactory, customer_writes, scalar, wait_for
from tests.unit.deliverer.receiver import HANG, Receiver
from webhooks.signing import verify

ASYNC = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.close()


async def _endpoint(api: httpx.AsyncClient, business: Business, url: str, events: list[str] | None = None,
                    **extra: Any) -> dict[str, Any]:
    created = await api.post("/v1/webhooks", headers=business.auth,
                             json={"url": url, "events": events or ["*"], **extra})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _bodies(receiver: Receiver, path: str, event_type: str | None = None) -> list[dict[str, Any]]:
    found = [json.loads(r.body) for r in receiver.at(path)]
    return [b for b in found if event_type is None or b["type"] == event_type]


def _texts(receiver: Receiver, path: str) -> list[str]:
    return [b["data"]["text"] for b in _bodies(receiver, path, "message.received")]


async def _log(api: httpx.AsyncClient, business: Business, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
    answer = await api.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=business.auth, params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


@ASYNC
async def test_an_endpoint_gets_each_subscribed_event_once_in_order_and_signed(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver) -> None:
    shop = await business_factory("webhooks shop")
    subscribed = ["message.received", "message.sent", "message.status", "conversation.created"]
    endpoint = await _endpoint(api, shop, receiver.url("/in"), subscribed, description="CRM")
    secret = endpoint["secret"]
    assert secret.startswith("whsec_") and endpoint["state"] == "active"
    listed = await api.get("/v1/webhooks", headers=shop.auth)
    assert [e["id"] for e in listed.json()["items"]] == [endpoint["id"]] and secret not in listed.text
    assert secret not in (await api.get(f"/v1/webhooks/{endpoint['id']}", headers=shop.auth)).text

    customer = "16505550901"
    for text in ("one", "two", "three"):
        await customer_writes(sim, db, shop, customer, text=text)
    sent = await api.post("/v1/messages", headers=shop.auth, json={
        "to": customer, "type": "text", "text": {"body": "thanks"}})
    assert sent.status_code == 202, sent.text

    def statuses() -> set[str]:
        return {b["data"]["status"] for b in _bodies(receiver, "/in", "message.status")}

    async def everything() -> bool:
        return len(_texts(receiver, "/in")) >= 3 and bool(_bodies(receiver, "/in", "message.sent")) and \
            "read" in statuses()

    await wait_for(everything, timeout=60, what="the events at the endpoint")
    await wait_for(lambda: _all_delivered(api, shop, endpoint["id"]), what="the log to show every delivery done")
    bodies = _bodies(receiver, "/in")
    ids = [b["id"] for b in bodies]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert {b["type"] for b in bodies} <= set(subscribed)
    assert _texts(receiver, "/in") == ["one", "two", "three"]
    types = [b["type"] for b in bodies if b["data"].get("conversation_key") == shop.conversation(customer)]
    assert types[0] == "conversation.created" and types.count("conversation.created") == 1
    assert {"delivered", "read"} <= statuses()
    assert _bodies(receiver, "/in", "message.sent")[0]["data"]["message_id"] == sent.json()["id"]
    for request in receiver.at("/in"):
        verify(secret, request.headers, request.body, now=int(time.time()))
        assert request.headers["webhook-id"] == json.loads(request.body)["id"]
    log = await _log(api, shop, endpoint["id"])
    assert len(log) == len(bodies) and {(d["state"], d["response_status"], d["attempts"]) for d in log} == {
        ("delivered", 200, 1)}
    assert all(d["latency_ms"] is not None for d in log)


async def _all_delivered(api: httpx.AsyncClient, business: Business, endpoint_id: str) -> bool:
    log = await _log(api, business, endpoint_id)
    return bool(log) and all(d["state"] == "delivered" for d in log)


@ASYNC
async def test_an_endpoint_that_fails_five_times_then_recovers_gets_every_event_in_order(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver) -> None:
    shop = await business_factory("webhooks flaky")
    receiver.script("/flaky", [500, 503, 500, 502, 500])
    endpoint = await _endpoint(api, shop, receiver.url("/flaky"), ["message.received"])
    for text in ("a", "b", "c"):
        await customer_writes(sim, db, shop, "16505550902", text=text)
    await wait_for(lambda: _all_delivered(api, shop, endpoint["id"]), what="every delivery to succeed at last")
    assert len(receiver.at("/flaky")) == 5 + 3
    assert _texts(receiver, "/flaky")[-3:] == ["a", "b", "c"]  # the first one was tried six times before the rest
    assert set(_texts(receiver, "/flaky")[:5]) == {"a"}
    log = await _log(api, shop, endpoint["id"])
    assert sorted(d["attempts"] for d in log) == [1, 1, 6]
    assert (await api.get(f"/v1/webhooks/{endpoint['id']}", headers=shop.auth)).json()["failing_since"] is None


@ASYNC
async def test_a_hanging_endpoint_delays_neither_another_tenant_nor_a_send_to_meta(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver) -> None:
    stuck, other = await business_factory("webhooks stuck"), await business_factory("webhooks other")
    receiver.script("/hang", [], then=HANG)
    await _endpoint(api, stuck, receiver.url("/hang"), ["message.received"])
    await _endpoint(api, other, receiver.url("/other"), ["message.received"])
    for index in range(6):  # more conversations than the endpoint's concurrency: every slot hangs
        await customer_writes(sim, db, stuck, f"1650555091{index}", text=f"stuck {index}")
    await wait_for(lambda: _at_least(receiver, "/hang", 4), what="the hanging endpoint's slots to fill")

    started = time.monotonic()
    await customer_writes(sim, db, other, "16505550920", text="hello other")
    await wait_for(lambda: _at_least(receiver, "/other", 1), timeout=10, what="the other tenant's delivery")
    assert time.monotonic() - started < 4.0  # the hanging endpoint answers nothing for 5 s per attempt

    started = time.monotonic()
    sent = await api.post("/v1/messages", headers=stuck.auth, json={
        "to": "16505550910", "type": "text", "text": {"body": "our reply"}})
    assert sent.status_code == 202, sent.text

    async def at_meta() -> bool:
        response = await sim.get("/_sim/requests", params={"phone_number_id": stuck.phone_number_id})
        return any(r["path"].endswith("/messages") for r in response.json()["data"])

    await wait_for(at_meta, timeout=10, what="the stuck tenant's send to reach Meta")
    assert time.monotonic() - started < 4.0


async def _at_least(receiver: Receiver, path: str, count: int) -> bool:
    return len(receiver.at(path)) >= count


@ASYNC
async def test_urls_to_private_loopback_or_metadata_addresses_are_refused(
        api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    shop = await business_factory("webhooks ssrf")
    for url in ("http://169.254.169.254/latest/meta-data/", "https://10.0.0.8/hook", "https://[::ffff:a9fe:a9fe]/",
                "https://192.168.0.1/", "ftp://example.com/", "http://user:pw@127.0.0.1/"):
        refused = await api.post("/v1/webhooks", headers=shop.auth, json={"url": url})
        assert refused.status_code == 422, (url, refused.text)
        assert "url" in refused.text
    unknown = await api.post("/v1/webhooks", headers=shop.auth,
                             json={"url": "http://127.0.0.1:9/", "events": ["message.deleted"]})
    assert unknown.status_code == 422 and "message.deleted" in unknown.text
    assert (await api.get("/v1/webhooks", headers=shop.auth)).json()["items"] == []


@ASYNC
async def test_redelivery_replays_exactly_the_asked_event_or_range(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver) -> None:
    shop = await business_factory("webhooks replay")
    endpoint = await _endpoint(api, shop, receiver.url("/replay"), ["message.received"])
    for text in ("first", "second", "third", "fourth"):
        await customer_writes(sim, db, shop, "16505550930", text=text)
    await wait_for(lambda: _at_least(receiver, "/replay", 4), what="the four events")
    original = {b["data"]["text"]: b for b in _bodies(receiver, "/replay")}
    assert [b["timestamp"] for b in original.values()] == sorted(b["timestamp"] for b in original.values())

    asked = await api.post(f"/v1/webhooks/{endpoint['id']}/redeliver", headers=shop.auth, json={
        "since": original["second"]["timestamp"], "until": original["third"]["timestamp"]})
    assert asked.status_code == 202, asked.text
    done = await _redelivered(api, shop, endpoint["id"], asked.json()["id"])
    assert done["events"] == 2
    await wait_for(lambda: _at_least(receiver, "/replay", 6), what="the replayed range")
    replayed = [json.loads(r.body) for r in receiver.at("/replay")[4:]]
    assert replayed == [original["second"], original["third"]]  # the same ids and bodies, in order

    one = await api.post(f"/v1/webhooks/{endpoint['id']}/redeliver", headers=shop.auth,
                         json={"event_id": original["first"]["id"]})
    assert one.status_code == 202, one.text
    assert (await _redelivered(api, shop, endpoint["id"], one.json()["id"]))["events"] == 1
    await wait_for(lambda: _at_least(receiver, "/replay", 7), what="the replayed event")
    assert json.loads(receiver.at("/replay")[6].body) == original["first"]
    log = await _log(api, shop, endpoint["id"])
    assert sorted(d["origin"] for d in log) == sorted(["live"] * 4 + [asked.json()["id"]] * 2 + [one.json()["id"]])
    missing = await api.post(f"/v1/webhooks/{endpoint['id']}/redeliver", headers=shop.auth,
                             json={"event_id": "evt_" + "0" * 32})
    assert missing.status_code == 404
    too_long = await api.post(f"/v1/webhooks/{endpoint['id']}/redeliver", headers=shop.auth,
                              json={"since": "2026-01-01T00:00:00Z", "until": "2026-01-09T00:00:00Z"})
    assert too_long.status_code == 422


async def _redelivered(api: httpx.AsyncClient, business: Business, endpoint_id: str,
                       request_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        answer = await api.get(f"/v1/webhooks/{endpoint_id}/redeliveries/{request_id}", headers=business.auth)
        body = answer.json()
        assert body["state"] != "failed", body
        return body if body["state"] == "done" else None

    return dict(await wait_for(done, what="the redelivery request to be carried out"))


@ASYNC
async def test_a_410_disables_the_endpoint_until_the_tenant_switches_it_on(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver) -> None:
    shop = await business_factory("webhooks gone")
    receiver.script("/gone", [410])
    gone = await _endpoint(api, shop, receiver.url("/gone"), ["message.received"])
    witness = await _endpoint(api, shop, receiver.url("/witness"), ["message.received"])
    await customer_writes(sim, db, shop, "16505550940", text="before")

    async def disabled() -> dict[str, Any] | None:
        body = (await api.get(f"/v1/webhooks/{gone['id']}", headers=shop.auth)).json()
        return body if body["state"] == "disabled" else None

    state = await wait_for(disabled, what="the endpoint to be disabled")
    assert "410" in state["disabled_reason"] and state["enabled"] is True
    await customer_writes(sim, db, shop, "16505550940", text="while disabled")
    await wait_for(lambda: _at_least(receiver, "/witness", 2), what="the witness to hear of both messages")
    assert len(receiver.at("/gone")) == 1
    assert len(await _log(api, shop, gone["id"])) == 1  # nothing is queued for a disabled endpoint
    assert len(await _log(api, shop, witness["id"])) == 2

    switched = await api.patch(f"/v1/webhooks/{gone['id']}", headers=shop.auth, json={"enabled": True})
    assert switched.status_code == 200 and switched.json()["state"] == "active"
    await wait_for(lambda: _all_delivered(api, shop, gone["id"]), what="the held delivery once switched on")
    assert _texts(receiver, "/gone") == ["before", "before"]


@ASYNC
async def test_a_rotated_secret_signs_beside_the_previous_one_during_the_overlap(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver) -> None:
    shop = await business_factory("webhooks rotation")
    endpoint = await _endpoint(api, shop, receiver.url("/rotated"), ["message.received"])
    rotated = await api.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=shop.auth,
                             json={"overlap_s": 3600})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != endpoint["secret"] and rotated.json()["previous_secret_until"] is not None
    await customer_writes(sim, db, shop, "16505550950", text="rotated")
    await wait_for(lambda: _at_least(receiver, "/rotated", 1), what="a delivery")
    [request] = receiver.at("/rotated")
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (new, endpoint["secret"]):
        verify(secret, request.headers, request.body, now=int(time.time()))


@ASYNC
async def test_a_failing_endpoint_dead_letters_then_is_disabled(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver) -> None:
    """The test stack's deliverer gives a delivery 20 s and an endpoint 30 s (production: 24 h each)."""
    shop = await business_factory("webhooks failing")
    receiver.script("/down", [], then=500)
    endpoint = await _endpoint(api, shop, receiver.url("/down"), ["message.received"])
    await customer_writes(sim, db, shop, "16505550960", text="never heard")

    async def dead() -> list[dict[str, Any]]:
        return await _log(api, shop, endpoint["id"], state="dead")

    [letter] = await wait_for(dead, timeout=60, what="the delivery to be dead-lettered")
    assert letter["attempts"] > 5 and letter["response_status"] == 500 and letter["finished_at"] is not None

    async def disabled() -> dict[str, Any] | None:
        body = (await api.get(f"/v1/webhooks/{endpoint['id']}", headers=shop.auth)).json()
        return body if body["state"] == "disabled" else None

    await customer_writes(sim, db, shop, "16505550960", text="still failing")
    state = await wait_for(disabled, timeout=60, what="the endpoint to be disabled after failing for long")
    assert state["disabled_reason"].startswith("failing since") and "HTTP 500" in state["disabled_reason"]
    assert await scalar(db, "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e",
                        e=endpoint["id"]) == 2


@ASYNC
async def test_a_conversations_life_and_its_contacts_opt_out_are_events(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver) -> None:
    shop = await business_factory("webhooks lifecycle")
    rule = await api.post("/v1/automations", headers=shop.auth, json={
        "name": "to a person", "trigger": {"type": "keyword", "keywords": ["human"]},
        "actions": [{"type": "handoff", "reason": "asked for a person"}]})
    assert rule.status_code == 201, rule.text
    agent = await api.post("/v1/users", headers=shop.auth, json={
        "email": f"agent-{shop.tenant_id}@shop.test", "password": "an agent's password", "role": "agent"})
    assert agent.status_code == 201, agent.text
    await _endpoint(api, shop, receiver.url("/life"), [
        "conversation.created", "conversation.handed_off", "conversation.assigned", "conversation.resolved",
        "contact.created", "contact.opted_out"])
    customer = "16505550970"
    key = shop.conversation(customer)
    await customer_writes(sim, db, shop, customer, text="I want a human please")
    await wait_for(lambda: _types_at(receiver, "/life", "conversation.handed_off"), what="the hand-off event")
    assigned = await api.post(f"/v1/conversations/{key}/assign", headers=shop.auth,
                              json={"agent_id": agent.json()["id"]})
    assert assigned.status_code == 202, assigned.text
    await wait_for(lambda: _types_at(receiver, "/life", "conversation.assigned"), what="the assignment event")
    resolved = await api.post(f"/v1/conversations/{key}/resolve", headers=shop.auth)
    assert resolved.status_code == 202, resolved.text
    await wait_for(lambda: _types_at(receiver, "/life", "conversation.resolved"), what="the resolution event")
    await customer_writes(sim, db, shop, customer, text="STOP")
    await wait_for(lambda: _types_at(receiver, "/life", "contact.opted_out"), what="the opt-out event")

    bodies = _bodies(receiver, "/life")
    in_conversation = [b["type"] for b in bodies if b["data"].get("conversation_key") == key]
    assert in_conversation == ["conversation.created", "conversation.handed_off", "conversation.assigned",
                               "conversation.resolved"]
    handed = next(b for b in bodies if b["type"] == "conversation.handed_off")
    assert handed["data"]["reason"] == "asked for a person" and handed["data"]["state"] == "queued"
    assert next(b for b in bodies if b["type"] == "conversation.assigned")["data"]["assignee_id"] == \
        agent.json()["id"]
    contact = [b["type"] for b in bodies if b["data"].get("wa_id") == customer and b["type"].startswith("contact.")]
    assert contact == ["contact.created", "contact.opted_out"]
    assert len({b["id"] for b in bodies}) == len(bodies)


@ASYNC
async def test_a_hand_off_read_before_the_message_that_opened_its_conversation_still_comes_after_its_creation(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        receiver: Receiver, producer: AsyncProducer, settings: CoreSettings) -> None:
    """The customer's message and the hand-off it causes are on two topics, and a fetch may bring the hand-off
    first (in an earlier batch); here it is written first. The conversation is still created before it, once."""
    shop = await business_factory("webhooks early hand-off")
    await _endpoint(api, shop, receiver.url("/early"), [
        "conversation.created", "conversation.handed_off", "message.received"])
    customer = "16505550971"
    key = shop.conversation(customer)
    early = ConversationChanged(
        event_id=f"{key}:read-early", tenant_id=shop.tenant_id, conversation_key=key,
        phone_number_id=shop.phone_number_id, wa_id=customer, state="queued", cause="rule", reason="read early",
        version=1, at=datetime.now(UTC))
    await producer.send(CONVERSATIONS_EVENTS.full_name(settings.topic_prefix), early.model_dump_json().encode(),
                        key.encode())
    await wait_for(lambda: _types_at(receiver, "/early", "conversation.handed_off"), what="the early hand-off")
    await customer_writes(sim, db, shop, customer)
    await wait_for(lambda: _types_at(receiver, "/early", "message.received"), what="the customer's message")

    types = [b["type"] for b in _bodies(receiver, "/early") if b["data"].get("conversation_key") == key]
    assert types[:2] == ["conversation.created", "conversation.handed_off"], types
    assert types.count("conversation.created") == 1, types
    assert _bodies(receiver, "/early", "conversation.handed_off")[0]["data"]["reason"] == "read early"


async def _types_at(receiver: Receiver, path: str, event_type: str) -> bool:
    return bool(_bodies(receiver, path, event_type))
