"""A customer waiting for a person is never left in silence: the acknowledgement once per waiting episode
(in or out of hours), the AI still answering a queued conversation when the tenant lets it, silent once an
agent holds it; the waiting settings and canned responses APIs. The real stack and the simulated Meta."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from automations.rules import WEEKDAYS, BusinessHours
from automations.waiting import AUTHOR, WaitingReplies, acknowledgement
from schemas.catalogue import AI_REQUESTS, OUTBOUND_INTERACTIVE
from stack.launcher import LocalStack
from tests.integration.helpers import Business, BusinessFactory, customer_writes, rows, scalar, topic_records, wait_for
from tests.integration.people import person

pytestmark = pytest.mark.asyncio(loop_scope="session")

SHIPPING = ("How long does shipping take?", "Orders ship within 2 business days and arrive in 3 to 5 days.")
HANDOFF_TEXT = "I need to talk to a person about my invoice"
IN_HOURS = WaitingReplies().in_hours_text


async def _tenant(api: httpx.AsyncClient, business_factory: BusinessFactory, **waiting: Any) -> Business:
    """A connected tenant with the acknowledgement on (the product's default), a knowledge base, no agent online."""
    business = await business_factory("waiting", acknowledge=True)
    made = await api.post("/v1/knowledge", headers=business.auth, json={
        "question": SHIPPING[0], "answer": SHIPPING[1], "keywords": ["delivery", "arrive"]})
    assert made.status_code == 201, made.text
    if waiting:
        current = (await api.get("/v1/settings/waiting", headers=business.auth)).json()
        saved = await api.put("/v1/settings/waiting", headers=business.auth, json={**current, **waiting})
        assert saved.status_code == 200, saved.text
    return business


async def _sent(sim: httpx.AsyncClient, business: Business, wa_id: str) -> list[str]:
    """The text bodies the simulated Meta accepted from the tenant's number for ``wa_id``, in order."""
    answer = await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})
    return [e["body"]["text"]["body"] for e in answer.json()["data"]
            if e["recipient"] == wa_id and e["status"] == 200 and e["body"].get("type") == "text"]


async def _texts(sim: httpx.AsyncClient, business: Business, wa_id: str, count: int) -> list[str] | None:
    found = await _sent(sim, business, wa_id)
    return found if len(found) >= count else None


async def _state(api: httpx.AsyncClient, business: Business, key: str) -> str | None:
    answer = await api.get(f"/v1/conversations/{key}", headers=business.auth)
    return answer.json().get("state") if answer.status_code == 200 else None


async def _handled(db: AsyncEngine, key: str, wamid: str) -> Any:
    """The durable state's version once the processor handled ``wamid`` (its outputs were written before)."""
    return await scalar(db, "SELECT version FROM conversation_state WHERE conversation_key = :k AND "
                            "state ->> 'last_wamid' = :w", k=key, w=wamid)


async def _queued_sends(stack: LocalStack, key: str) -> list[dict[str, Any]]:
    """Every send request the processor put on the interactive lane for ``key``."""
    values = await asyncio.to_thread(topic_records, stack, OUTBOUND_INTERACTIVE.name, idle_s=1.0)
    return [r for r in map(json.loads, values) if f"{r.get('phone_number_id')}:{r.get('to')}" == key]


async def _asked(stack: LocalStack, key: str) -> list[str]:
    values = await asyncio.to_thread(topic_records, stack, AI_REQUESTS.name, idle_s=1.0)
    return [r["message_wamid"] for r in map(json.loads, values) if r.get("conversation_key") == key]


async def test_nobody_online_acknowledges_once_then_the_ai_answers_while_queued_then_is_silent(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        business_factory: BusinessFactory) -> None:
    business = await _tenant(api, business_factory)
    customer = "919811000001"
    key = business.conversation(customer)
    await customer_writes(sim, db, business, customer, text=HANDOFF_TEXT)
    assert await wait_for(lambda: _texts(sim, business, customer, 1), what="the acknowledgement") == [IN_HOURS]
    await wait_for(lambda: _queued(api, business, key), what="the conversation to be projected as queued")
    [author] = await rows(db, "SELECT requested_by FROM messages WHERE tenant_id = :t AND conversation_key = :k "
                              "AND direction = 'outbound'", t=business.tenant_id, k=key)
    assert author.requested_by == AUTHOR

    # Same episode: a second message the AI cannot answer sends nothing more.
    second = await customer_writes(sim, db, business, customer, text="my invoice number is 4411, it is wrong")
    await wait_for(lambda: _handled(db, key, second), what="the second message handled")
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM conversation_events WHERE tenant_id = :t AND "
                                      "conversation_key = :k AND kind = 'ai_outcome' AND payload ->> "
                                      "'message_wamid' = :w", t=business.tenant_id, k=key, w=second),
                   what="the AI's decision on the second message")
    acks = [r for r in await _queued_sends(stack, key) if r["idempotency_key"].endswith(":waiting_ack")]
    assert len(acks) == 1 and await _sent(sim, business, customer) == [IN_HOURS]

    # A question the knowledge base answers, still queued: the AI's answer goes, the conversation waits on.
    await customer_writes(sim, db, business, customer, text="how long does delivery take?")
    assert await wait_for(lambda: _texts(sim, business, customer, 2), what="the AI's answer while queued") == \
        [IN_HOURS, SHIPPING[1]]
    await wait_for(lambda: _queued(api, business, key), what="the conversation to stay queued")
    queue = await api.get("/v1/conversations", headers=business.auth, params={"view": "queued"})
    assert key in [c["key"] for c in queue.json()["items"]]

    # An agent comes online and takes it: the AI stays silent from then on.
    ann = await person(api, db, business.tenant_id, "agent")
    online = await api.put("/v1/agents/me/presence", headers=ann.auth, json={"status": "online"})
    assert online.status_code == 200, online.text
    await wait_for(lambda: _agent_holds(api, business, key), what="the agent to take the conversation")
    later = await customer_writes(sim, db, business, customer, text=SHIPPING[0])
    await wait_for(lambda: _handled(db, key, later), what="the message to the agent handled")
    assert later not in await _asked(stack, key)
    assert len(await _queued_sends(stack, key)) == 2 and await _sent(sim, business, customer) == [IN_HOURS,
                                                                                                   SHIPPING[1]]


async def _queued(api: httpx.AsyncClient, business: Business, key: str) -> bool:
    return await _state(api, business, key) == "queued"


async def _agent_holds(api: httpx.AsyncClient, business: Business, key: str) -> bool:
    return await _state(api, business, key) == "agent"


async def test_out_of_hours_names_the_next_opening(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    tomorrow = WEEKDAYS[(datetime.now(UTC) + timedelta(days=1)).weekday()]
    hours = {tomorrow: [["09:00", "10:00"]]}
    business = await _tenant(api, business_factory, timezone="UTC", hours=hours)
    schedule = BusinessHours(timezone="UTC", hours={tomorrow: [("09:00", "10:00")]})
    before = datetime.now(UTC)
    customer = "919811000002"
    await customer_writes(sim, db, business, customer, text=HANDOFF_TEXT)
    [text] = await wait_for(lambda: _texts(sim, business, customer, 1), what="the out-of-hours acknowledgement")
    after = datetime.now(UTC)
    assert text in {acknowledgement(WaitingReplies(), schedule, at) for at in (before, after)}
    assert text.startswith("We're closed now; we reply from ") and "09:00 UTC" in text


async def test_with_ai_answers_while_waiting_off_a_queued_question_gets_no_answer(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        business_factory: BusinessFactory) -> None:
    business = await _tenant(api, business_factory, ai_answers_while_waiting=False,
                             in_hours_text="Hang on, a person will answer.")
    customer = "919811000003"
    key = business.conversation(customer)
    await customer_writes(sim, db, business, customer, text=HANDOFF_TEXT)
    assert await wait_for(lambda: _texts(sim, business, customer, 1), what="the acknowledgement") == \
        ["Hang on, a person will answer."]
    question = await customer_writes(sim, db, business, customer, text="how long does delivery take?")
    await wait_for(lambda: _handled(db, key, question), what="the queued question handled")
    assert question not in await _asked(stack, key) and len(await _queued_sends(stack, key)) == 1


async def test_acknowledge_off_sends_nothing(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        business_factory: BusinessFactory) -> None:
    business = await _tenant(api, business_factory, acknowledge=False)
    customer = "919811000004"
    key = business.conversation(customer)
    wamid = await customer_writes(sim, db, business, customer, text=HANDOFF_TEXT)
    await wait_for(lambda: _queued_state(api, business, key), what="the hand-off")
    await wait_for(lambda: _handled(db, key, wamid), what="the message handled")
    assert await _queued_sends(stack, key) == []


async def _queued_state(api: httpx.AsyncClient, business: Business, key: str) -> bool:
    return await _state(api, business, key) == "queued"


# --- the settings API ----------------------------------------------------------------------------


async def test_waiting_settings_defaults_validation_and_roles(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    business = await business_factory("settings", acknowledge=True)
    defaults = await api.get("/v1/settings/waiting", headers=business.auth)
    assert defaults.status_code == 200
    assert defaults.json() == {"acknowledge": True, "ai_answers_while_waiting": True, "in_hours_text": IN_HOURS,
                               "out_of_hours_text": WaitingReplies().out_of_hours_text, "timezone": "UTC",
                               "hours": {}}
    wanted = {"acknowledge": True, "ai_answers_while_waiting": False, "in_hours_text": "One moment please.",
              "out_of_hours_text": "Closed; back {next_open}.", "timezone": "Asia/Kolkata",
              "hours": {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "sat": [["22:00", "00:00"]], "sun": []}}
    saved = await api.put("/v1/settings/waiting", headers=business.auth, json=wanted)
    assert saved.status_code == 200, saved.text
    expected = {**wanted, "hours": {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "sat": [["22:00", "00:00"]]}}
    assert saved.json() == expected
    assert (await api.get("/v1/settings/waiting", headers=business.auth)).json() == expected
    hours = await api.get("/v1/settings/business-hours", headers=business.auth)  # one schedule for both
    assert hours.json()["timezone"] == "Asia/Kolkata" and hours.json()["hours"]["mon"][1] == ["14:00", "18:00"]

    bad = {
        "unknown zone": {"timezone": "Mars/Olympus"},
        "overlap": {"hours": {"tue": [["09:00", "12:00"], ["11:00", "13:00"]]}},
        "out of order": {"hours": {"tue": [["14:00", "15:00"], ["09:00", "10:00"]]}},
        "backwards": {"hours": {"tue": [["10:00", "09:00"]]}},
        "not a time": {"hours": {"tue": [["9:00", "10:00"]]}},
        "five ranges": {"hours": {"tue": [[f"0{h}:00", f"0{h}:30"] for h in range(1, 6)]}},
        "empty text": {"in_hours_text": " "},
        "long text": {"out_of_hours_text": "x" * 1025},
        "unknown day": {"hours": {"someday": [["09:00", "10:00"]]}},
    }
    for name, change in bad.items():
        refused = await api.put("/v1/settings/waiting", headers=business.auth, json={**wanted, **change})
        assert refused.status_code == 422, (name, refused.text)
    assert "Mars/Olympus" in (await api.put("/v1/settings/waiting", headers=business.auth,
                                            json={**wanted, "timezone": "Mars/Olympus"})).text

    agent = await person(api, db, business.tenant_id, "agent")
    assert (await api.get("/v1/settings/waiting", headers=agent.auth)).json() == expected
    assert (await api.put("/v1/settings/waiting", headers=agent.auth, json=wanted)).status_code == 403


# --- canned responses ----------------------------------------------------------------------------


async def test_canned_responses_crud_search_and_roles(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    business = await business_factory("canned")
    auth = business.auth
    hours = await api.post("/v1/canned-responses", headers=auth, json={"shortcut": "hours", "text": "9 to 6."})
    assert hours.status_code == 201, hours.text
    made = hours.json()
    assert set(made) == {"id", "shortcut", "text", "updated_at"} and made["shortcut"] == "hours"
    for shortcut in ("hello", "help-desk", "refund_policy"):
        created = await api.post("/v1/canned-responses", headers=auth, json={"shortcut": shortcut, "text": shortcut})
        assert created.status_code == 201, created.text
    listed = (await api.get("/v1/canned-responses", headers=auth)).json()
    assert [i["shortcut"] for i in listed["items"]] == ["hours", "hello", "help-desk", "refund_policy"]
    assert listed["next_cursor"] is None
    found = (await api.get("/v1/canned-responses", headers=auth, params={"q": "he"})).json()["items"]
    assert [i["shortcut"] for i in found] == ["hello", "help-desk"]
    first = (await api.get("/v1/canned-responses", headers=auth, params={"limit": 2})).json()
    rest = (await api.get("/v1/canned-responses", headers=auth, params={"limit": 2,
                                                                        "cursor": first["next_cursor"]})).json()
    assert [i["shortcut"] for i in first["items"] + rest["items"]] == ["hours", "hello", "help-desk", "refund_policy"]

    changed = await api.put(f"/v1/canned-responses/{made['id']}", headers=auth,
                            json={"shortcut": "opening-hours", "text": "We open at 9."})
    assert changed.status_code == 200 and changed.json()["text"] == "We open at 9."
    assert changed.json()["updated_at"] >= made["updated_at"]
    taken = await api.put(f"/v1/canned-responses/{made['id']}", headers=auth, json={"shortcut": "hello", "text": "x"})
    assert taken.status_code == 409
    duplicate = await api.post("/v1/canned-responses", headers=auth, json={"shortcut": "hello", "text": "again"})
    assert duplicate.status_code == 409 and "hello" in duplicate.text
    for body in ({"shortcut": "Hello", "text": "x"}, {"shortcut": "-x", "text": "x"},
                 {"shortcut": "a" * 33, "text": "x"}, {"shortcut": "ok", "text": ""},
                 {"shortcut": "ok", "text": "x" * 4097}, {"shortcut": "ok"}):
        assert (await api.post("/v1/canned-responses", headers=auth, json=body)).status_code == 422, body
    assert (await api.post("/v1/canned-responses", headers=auth,
                           json={"shortcut": "ok", "text": "x" * 4096})).status_code == 201

    agent = await person(api, db, business.tenant_id, "agent")
    assert len((await api.get("/v1/canned-responses", headers=agent.auth)).json()["items"]) == 5
    assert (await api.post("/v1/canned-responses", headers=agent.auth,
                           json={"shortcut": "mine", "text": "x"})).status_code == 403
    assert (await api.delete(f"/v1/canned-responses/{made['id']}", headers=agent.auth)).status_code == 403

    assert (await api.delete(f"/v1/canned-responses/{made['id']}", headers=auth)).status_code == 204
    assert (await api.delete(f"/v1/canned-responses/{made['id']}", headers=auth)).status_code == 404
    assert (await api.put(f"/v1/canned-responses/{uuid.uuid4()}", headers=auth,
                          json={"shortcut": "zz", "text": "x"})).status_code == 404


async def test_canned_responses_are_the_tenants_own(
        api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    a, b = await business_factory("canned a"), await business_factory("canned b")
    mine = (await api.post("/v1/canned-responses", headers=a.auth, json={"shortcut": "same", "text": "A's"})).json()
    theirs = await api.post("/v1/canned-responses", headers=b.auth, json={"shortcut": "same", "text": "B's"})
    assert theirs.status_code == 201  # a shortcut is unique per tenant only
    assert [i["text"] for i in (await api.get("/v1/canned-responses", headers=b.auth)).json()["items"]] == ["B's"]
    assert (await api.put(f"/v1/canned-responses/{mine['id']}", headers=b.auth,
                          json={"shortcut": "same", "text": "taken over"})).status_code == 404
    assert (await api.delete(f"/v1/canned-responses/{mine['id']}", headers=b.auth)).status_code == 404
    assert [i["text"] for i in (await api.get("/v1/canned-responses", headers=a.auth)).json()["items"]] == ["A's"]


async def test_a_tenant_keeps_at_most_500_canned_responses(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    business = await business_factory("canned cap")
    async with db.begin() as conn:
        await conn.execute(text("INSERT INTO canned_responses (id, tenant_id, shortcut, text) SELECT "
                                "gen_random_uuid(), :t, 'r' || n, 'reply ' || n FROM generate_series(1, 499) n"),
                           {"t": business.tenant_id})
    last = await api.post("/v1/canned-responses", headers=business.auth, json={"shortcut": "last", "text": "x"})
    assert last.status_code == 201, last.text
    over = await api.post("/v1/canned-responses", headers=business.auth, json={"shortcut": "over", "text": "x"})
    assert over.status_code == 422 and "500" in over.text
    page = (await api.get("/v1/canned-responses", headers=business.auth, params={"limit": 200})).json()
    assert len(page["items"]) == 200 and page["next_cursor"] is not None
