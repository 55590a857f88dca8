"""The conversation state machine end to end: simulated customers, the real broker, PostgreSQL, Redis,
the AI worker (offline scorer, and the OpenAI client against a local chat-completions server), the
dispatcher and the simulator.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.producer import AsyncProducer
from schemas.ai import AiDecision
from schemas.catalogue import AI_DECISIONS, AI_REQUESTS
from schemas.events import derived_event_id
from stack.launcher import LocalStack
from tenants.users import create_user
from tests.integration.helpers import (
    MODEL,
    Business,
    BusinessFactory,
    customer_writes,
    rows,
    scalar,
    topic_records,
    wait_for,
)
from tests.unit.ai.chat_server import Scripted, decision

pytestmark = pytest.mark.asyncio(loop_scope="session")

KNOWLEDGE = [
    ("How long does shipping take?", "Orders ship within 2 business days and arrive in 3 to 5 days.",
     ["delivery", "arrive"]),
    ("What is your return policy?", "You can return any item within 30 days for a full refund.", ["refund"]),
    ("Which payment methods do you accept?", "We accept cards, UPI and cash on delivery.", ["pay", "upi"]),
    ("What are your opening hours?", "Our store is open 9am to 6pm, Monday to Saturday.", ["open", "hours"]),
]


@dataclass
class Shop:
    """A connected tenant with a knowledge base, its admin key and two agents' sessions."""

    business: Business
    agents: dict[str, str]  # name -> user id
    sessions: dict[str, dict[str, str]]  # name -> auth header

    @property
    def auth(self) -> dict[str, str]:
        return self.business.auth


async def _shop(api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory, *,
                provider: str = "offline", agents: tuple[str, ...] = ("ann", "bob")) -> Shop:
    business = await business_factory("shop")
    for question, answer, keywords in KNOWLEDGE:
        made = await api.post("/v1/knowledge", headers=business.auth,
                              json={"question": question, "answer": answer, "keywords": keywords})
        assert made.status_code == 201, made.text
    configured = await api.put("/v1/settings/ai", headers=business.auth, json={"provider": provider,
                                                                               "threshold": 0.7})
    assert configured.status_code == 200, configured.text
    ids, sessions = {}, {}
    for name in agents:
        email, password = f"{name}-{business.tenant_id}@shop.test", f"{name}'s long password"
        async with db.begin() as conn:
            user = await create_user(conn, tenant_id=business.tenant_id, email=email, password=password, role="agent")
        login = await api.post("/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        ids[name], sessions[name] = user.user_id, {"Authorization": f"Bearer {login.json()['token']}"}
    return Shop(business, ids, sessions)


async def _presence(api: httpx.AsyncClient, shop: Shop, name: str, status: str) -> None:
    answer = await api.put("/v1/agents/me/presence", headers=shop.sessions[name], json={"status": status})
    assert answer.status_code == 200, answer.text


async def _conversation(api: httpx.AsyncClient, shop: Shop, key: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/conversations/{key}", headers=shop.auth)
    return dict(answer.json()) if answer.status_code == 200 else {}


async def _until_state(api: httpx.AsyncClient, shop: Shop, key: str, state: str, **fields: Any) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        found = await _conversation(api, shop, key)
        ok = found.get("state") == state and all(found.get(k) == v for k, v in fields.items())
        return found if ok else None

    return dict(await wait_for(reached, what=f"{key} to be {state} {fields}"))


async def _sent_to(sim: httpx.AsyncClient, shop: Shop, wa_id: str) -> list[str]:
    """The text bodies Meta accepted from the shop's number for ``wa_id``."""
    answer = await sim.get("/_sim/requests", params={"phone_number_id": shop.business.phone_number_id})
    return [entry["body"]["text"]["body"] for entry in answer.json()["data"]
            if entry["recipient"] == wa_id and entry["status"] == 200 and entry["body"].get("type") == "text"]


async def _outcomes(db: AsyncEngine, shop: Shop, key: str) -> list[Any]:
    return await rows(db, "SELECT payload FROM conversation_events WHERE tenant_id = :t AND conversation_key = :k "
                          "AND kind = 'ai_outcome' ORDER BY id", t=shop.business.tenant_id, k=key)


async def test_a_question_the_knowledge_base_answers_is_answered_once(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    shop = await _shop(api, db, business_factory)
    customer = "919800000001"
    await customer_writes(sim, db, shop.business, customer, text="how long does delivery take?")
    key = shop.business.conversation(customer)
    await wait_for(lambda: _outcomes(db, shop, key), what="the AI's decision")
    [outcome] = [r.payload for r in await _outcomes(db, shop, key)]
    assert outcome["applied"] and outcome["outcome"] == "reply" and outcome["confidence"] >= 0.7

    async def replied() -> list[str]:
        return await _sent_to(sim, shop, customer)

    assert await wait_for(replied, what="the AI's reply at Meta") == [KNOWLEDGE[0][1]]
    assert (await _conversation(api, shop, key))["state"] == "bot"
    # Exactly once, even after the reply was read and everything settled.
    status = await wait_for(lambda: scalar(db, "SELECT status FROM messages WHERE tenant_id = :t AND "
                                               "conversation_key = :k AND direction = 'outbound' AND status = 'read'",
                                           t=shop.business.tenant_id, k=key), what="the reply to be read")
    assert status == "read" and await _sent_to(sim, shop, customer) == [KNOWLEDGE[0][1]]


async def test_an_unanswerable_question_goes_to_the_least_loaded_agent_and_the_ai_stays_silent(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        business_factory: BusinessFactory) -> None:
    shop = await _shop(api, db, business_factory)
    await _presence(api, shop, "ann", "online")
    await _presence(api, shop, "bob", "online")
    # ann already holds a conversation: bob is the least loaded.
    first = "919800000010"
    await customer_writes(sim, db, shop.business, first, text="hi there")
    assert (await api.post(f"/v1/conversations/{shop.business.conversation(first)}/assign", headers=shop.auth,
                           json={"agent_id": shop.agents["ann"]})).status_code == 202
    await _until_state(api, shop, shop.business.conversation(first), "agent", assignee_id=shop.agents["ann"])

    customer = "919800000011"
    key = shop.business.conversation(customer)
    await customer_writes(sim, db, shop.business, customer, text="can you repair my car engine?")
    found = await _until_state(api, shop, key, "agent", assignee_id=shop.agents["bob"])
    assert "knowledge-base" in (found.get("handoff_reason") or "")  # the AI's reason travels with it
    assert await _sent_to(sim, shop, customer) == []

    reply = await api.post(f"/v1/conversations/{key}/reply", headers=shop.sessions["bob"],
                           json={"message": {"type": "text", "text": {"body": "Bob here, let me check."}}})
    assert reply.status_code == 202, reply.text

    async def bob_replied() -> list[str]:
        return await _sent_to(sim, shop, customer)

    assert await wait_for(bob_replied, what="bob's reply at Meta") == ["Bob here, let me check."]
    second = await customer_writes(sim, db, shop.business, customer, text="how long does delivery take?")
    requests = [json.loads(v) for v in topic_records(stack, AI_REQUESTS.name)]
    assert [r for r in requests if r["message_wamid"] == second] == []  # no AI for a conversation a person holds
    assert (await _conversation(api, shop, key))["state"] == "agent"
    assert await _sent_to(sim, shop, customer) == ["Bob here, let me check."]


async def test_an_ai_decision_after_a_human_replied_is_discarded(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        producer: AsyncProducer, business_factory: BusinessFactory) -> None:
    shop = await _shop(api, db, business_factory, agents=("ann",))
    await _presence(api, shop, "ann", "online")
    customer = "919800000020"
    key = shop.business.conversation(customer)
    wamid = await customer_writes(sim, db, shop.business, customer, text="what is the return policy?")
    await wait_for(lambda: _outcomes(db, shop, key), what="the AI's first decision")
    human = await api.post(f"/v1/conversations/{key}/reply", headers=shop.sessions["ann"],
                           json={"message": {"type": "text", "text": {"body": "Ann here."}}})
    assert human.status_code == 202
    await _until_state(api, shop, key, "agent", assignee_id=shop.agents["ann"])
    version = (await _conversation(api, shop, key))["version"]
    late = AiDecision(event_id=derived_event_id("late", key), tenant_id=shop.business.tenant_id,
                      conversation_key=key, message_wamid=wamid, version=version, outcome="reply",
                      reply="A late AI answer", confidence=0.99, reason="slow model", provider="openai",
                      decided_at=datetime.now(UTC))
    await producer.send(AI_DECISIONS.name, late.encode(), key)

    async def discarded() -> Any:
        found = [r.payload for r in await _outcomes(db, shop, key) if r.payload["reason"] == "slow model"]
        return found[0] if found else None

    outcome = await wait_for(discarded, what="the late decision to be recorded")
    assert not outcome["applied"] and "a person took over" in outcome["discarded_because"]
    assert "A late AI answer" not in await _sent_to(sim, shop, customer)


async def test_keyword_payload_business_hours_and_stop(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    shop = await _shop(api, db, business_factory, agents=())
    rules = [
        {"name": "price", "trigger": {"type": "keyword", "keywords": ["price", "cost"]},
         "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "Plans start at $10."}}},
                     {"type": "add_tag", "tag": "pricing"}]},
        {"name": "track", "trigger": {"type": "payload", "payloads": ["TRACK_ORDER"]},
         "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "Send your order number."}}}],
         "stop": True},
        {"name": "closed", "trigger": {"type": "outside_business_hours"},
         "conditions": [{"type": "contact_tags", "has": ["night"]}],
         "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "We are closed now."}}}]},
    ]
    for rule in rules:
        assert (await api.post("/v1/automations", headers=shop.auth, json=rule)).status_code == 201
    # Closed all week, so "outside business hours" holds whenever the test runs.
    hours = {"timezone": "Asia/Kolkata", "hours": {"sun": [["00:00", "00:01"]]}}
    assert (await api.put("/v1/settings/business-hours", headers=shop.auth, json=hours)).status_code == 200

    keyword, payload, stop = "919800000030", "919800000031", "919800000032"
    await customer_writes(sim, db, shop.business, keyword, text="what does it cost?")
    await customer_writes(sim, db, shop.business, payload, text="Track my order",
                          type="button", payload="TRACK_ORDER")
    await customer_writes(sim, db, shop.business, stop, text="STOP")

    async def texts(wa_id: str, count: int) -> list[str] | None:
        found = await _sent_to(sim, shop, wa_id)
        return found if len(found) >= count else None

    assert await wait_for(lambda: texts(keyword, 1), what="the keyword reply") == ["Plans start at $10."]
    assert await wait_for(lambda: texts(payload, 1), what="the payload reply") == ["Send your order number."]
    [confirmation] = await wait_for(lambda: texts(stop, 1), what="the opt-out confirmation")
    assert "no longer receive" in confirmation
    opted = await wait_for(lambda: scalar(db, "SELECT opted_out FROM contacts WHERE tenant_id = :t AND wa_id = :w "
                                              "AND opted_out", t=shop.business.tenant_id, w=stop),
                           what="the opt-out in PostgreSQL")
    assert opted is True
    tags = await wait_for(lambda: scalar(db, "SELECT tags FROM contacts WHERE tenant_id = :t AND wa_id = :w AND "
                                             "tags <> '[]'::jsonb", t=shop.business.tenant_id, w=keyword),
                          what="the tag")
    assert tags == ["pricing"]
    price_rule = (await api.get("/v1/automations", headers=shop.auth)).json()["items"][0]["id"]
    executions = await api.get(f"/v1/automations/{price_rule}/executions", headers=shop.auth)
    assert executions.status_code == 200 and len(executions.json()["items"]) >= 1

    # The business-hours rule needs the "night" tag: a rule adds it, and the customer's next message is
    # answered (rules see the contact as it was when the message arrived).
    night = {"name": "tag night", "trigger": {"type": "keyword", "keywords": ["tonight"]}, "stop": True,
             "actions": [{"type": "add_tag", "tag": "night"}]}
    assert (await api.post("/v1/automations", headers=shop.auth, json=night)).status_code == 201
    late = "919800000033"
    await customer_writes(sim, db, shop.business, late, text="are you there tonight?")
    assert await _sent_to(sim, shop, late) == []
    await customer_writes(sim, db, shop.business, late, text="hello?")
    assert await wait_for(lambda: texts(late, 1), what="the after-hours reply") == ["We are closed now."]


async def test_nobody_online_queues_until_an_agent_comes_online(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    shop = await _shop(api, db, business_factory, agents=("ann", "cid"))
    await _presence(api, shop, "cid", "away")  # away agents never get conversations
    customer = "919800000040"
    key = shop.business.conversation(customer)
    await customer_writes(sim, db, shop.business, customer, text="I need to talk to a person about my invoice")
    await _until_state(api, shop, key, "queued")
    await _presence(api, shop, "ann", "online")
    await _until_state(api, shop, key, "agent", assignee_id=shop.agents["ann"])
    queued = await api.get("/v1/conversations", headers=shop.auth, params={"view": "queued"})
    assert key not in [c["key"] for c in queued.json()["items"]]


@pytest.mark.parametrize("failure", ["down", "slow"])
async def test_a_failing_model_hands_off_and_loses_nothing(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory,
        failure: str) -> None:
    shop = await _shop(api, db, business_factory, provider="openai", agents=())
    customer = f"91980000005{0 if failure == 'down' else 1}"
    key = shop.business.conversation(customer)
    if failure == "down":
        MODEL.stop()
    else:
        MODEL.state.script.append(Scripted(decision("too late", 0.99, "slow").content, delay_s=5.0))
    try:
        started = time.monotonic()
        await customer_writes(sim, db, shop.business, customer, text="what are your opening hours?")
        found = await _until_state(api, shop, key, "queued")
    finally:
        if failure == "down":
            MODEL.start()
    expected = "model error" if failure == "down" else "timed out"
    assert expected in (found.get("handoff_reason") or ""), found
    assert time.monotonic() - started < 30
    assert await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND conversation_key = :k AND "
                            "direction = 'inbound'", t=shop.business.tenant_id, k=key) == 1
    assert await _sent_to(sim, shop, customer) == []


async def test_the_openai_model_answers_when_confident(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    shop = await _shop(api, db, business_factory, provider="openai", agents=())
    MODEL.state.script.append(decision("We are open 9 to 6, Monday to Saturday.", 0.92, "opening hours entry"))
    customer = "919800000060"
    await customer_writes(sim, db, shop.business, customer, text="when are you open?")

    async def replied() -> list[str]:
        return await _sent_to(sim, shop, customer)

    assert await wait_for(replied, what="the model's reply") == ["We are open 9 to 6, Monday to Saturday."]
    asked = [r for r in MODEL.state.received if any("when are you open?" in str(m.get("content"))
                                                    for m in r.messages)]
    assert asked and asked[-1].body["model"] == "test-model"
    assert any("opening hours" in str(m.get("content")).lower() for m in asked[-1].messages)  # grounded


async def test_a_free_form_reply_after_the_window_closed_needs_a_template(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    shop = await _shop(api, db, business_factory, agents=("ann",))
    customer = "919800000070"
    key = shop.business.conversation(customer)
    old = int(time.time()) - 25 * 3600
    await customer_writes(sim, db, shop.business, customer, text="hello from yesterday", timestamp=old)
    reply = await api.post(f"/v1/conversations/{key}/reply", headers=shop.sessions["ann"],
                           json={"message": {"type": "text", "text": {"body": "Sorry for the wait!"}}})
    assert reply.status_code == 202, reply.text
    message_id = reply.json()["id"]

    async def failed() -> dict[str, Any] | None:
        found = (await api.get(f"/v1/messages/{message_id}", headers=shop.sessions["ann"])).json()
        return found if found.get("status") == "failed" else None

    found = await wait_for(failed, what="the reply to fail")
    assert found["error"]["title"] == "outside_service_window"
    assert "template" in found["error"]["details"]
    assert await _sent_to(sim, shop, customer) == []
