"""What the console's inbox reads from the JSON API, over HTTP against the real stack: tab counts, the list's
extras (last message, who handles it, the window, unread counts), read markers per user and tenant, the
waiting queue, the thread with its senders, the contact's history and template replies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import messages
from tests.integration.helpers import Business, BusinessFactory, customer_writes, fresh_id, scalar, wait_for
from tests.integration.inbox_fixtures import approved_template, seed
from tests.integration.people import Person, person

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.usefixtures("pipeline_ready")]
TEXT = {"type": "text", "text": {"body": "Thanks, an agent is on it"}}


async def _items(api: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, dict[str, Any]]:
    response = await api.get("/v1/conversations", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return {c["key"]: c for c in response.json()["items"]}


async def _counts(api: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/conversations/counts", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_tabs_count_what_each_view_lists(api: httpx.AsyncClient, db: AsyncEngine,
                                               business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("inbox tabs"), await business_factory("inbox tabs other")
    agent, colleague = await person(api, db, tenant.tenant_id), await person(api, db, tenant.tenant_id)
    mine = await seed(db, tenant, fresh_id(), name="Ann Mine", minutes_ago=1, state="agent", assignee=agent.user_id,
                      tags=("vip",))
    theirs = await seed(db, tenant, fresh_id(), name="Ben Theirs", minutes_ago=2, state="agent",
                        assignee=colleague.user_id)
    waiting_long = await seed(db, tenant, fresh_id(), name="Cat Waiting", minutes_ago=3, state="queued",
                              team="sales", changed_minutes_ago=30, tags=("vip",))
    waiting_short = await seed(db, tenant, fresh_id(), name="Dan Waiting", minutes_ago=4, state="queued",
                               changed_minutes_ago=5)
    bot = await seed(db, tenant, fresh_id(), name="Eve Bot", minutes_ago=5, inbound_minutes_ago=25 * 60)
    closed = await seed(db, tenant, fresh_id(), name="Fay Closed", minutes_ago=6, state="closed",
                        assignee=agent.user_id)
    await seed(db, other, fresh_id(), name="Ann Other", state="queued")  # another tenant's: never counted

    assert await _counts(api, agent.auth) == {"mine": 2, "unassigned": 3, "queued": 2, "all": 6}
    assert await _counts(api, agent.auth, state="open") == {"mine": 1, "unassigned": 3, "queued": 2, "all": 5}
    assert await _counts(api, colleague.auth, state="open") == {"mine": 1, "unassigned": 3, "queued": 2, "all": 5}
    assert await _counts(api, agent.auth, tag="vip") == {"mine": 1, "unassigned": 1, "queued": 1, "all": 2}
    assert await _counts(api, agent.auth, q="waiting") == {"mine": 0, "unassigned": 2, "queued": 2, "all": 2}
    assert await _counts(api, tenant.auth, team="sales") == {"mine": None, "unassigned": 1, "queued": 1, "all": 1}

    assert list(await _items(api, agent.auth, view="unassigned")) == [waiting_long, waiting_short, bot]
    assert list(await _items(api, agent.auth, view="mine", state="open")) == [mine]
    assert list(await _items(api, agent.auth, tag="vip")) == [mine, waiting_long]
    assert list(await _items(api, agent.auth, state="open")) == [mine, theirs, waiting_long, waiting_short, bot]
    listed = await _items(api, agent.auth)
    assert {k: c["handled_by"] for k, c in listed.items()} == {
        mine: "human", theirs: "human", waiting_long: "queue", waiting_short: "queue", bot: "ai", closed: "nobody"}
    assert all(c["window_expires_at"] == c["window_open_until"] is not None for c in listed.values())
    assert listed[mine]["contact_id"] is not None and listed[mine]["unread"] == 0
    assert all(c["unread"] is None for c in (await _items(api, tenant.auth)).values())  # an API key has no marker

    queue = (await api.get("/v1/conversations/queue", headers=agent.auth)).json()
    assert [c["key"] for c in queue["items"]] == [waiting_long, waiting_short]  # longest wait first
    first = (await api.get("/v1/conversations/queue", headers=agent.auth, params={"limit": 1})).json()
    rest = (await api.get("/v1/conversations/queue", headers=agent.auth,
                          params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [c["key"] for c in first["items"] + rest["items"]] == [waiting_long, waiting_short]
    assert rest["next_cursor"] is None
    sales = (await api.get("/v1/conversations/queue", headers=agent.auth, params={"team": "sales"})).json()
    assert [c["key"] for c in sales["items"]] == [waiting_long]

    for bad in ({"state": "pending"}, {"tag": ""}, {"q": "x" * 101}):
        assert (await api.get("/v1/conversations/counts", headers=agent.auth, params=bad)).status_code == 422, bad
    assert (await api.get("/v1/conversations", headers=agent.auth, params={"view": "theirs"})).status_code == 422


async def _unread(api: httpx.AsyncClient, who: Person | Business, key: str) -> Any:
    return (await _items(api, who.auth))[key]["unread"]


async def test_unread_counts_follow_each_users_read_marker(api: httpx.AsyncClient, db: AsyncEngine,
                                                           sim: httpx.AsyncClient,
                                                           business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("inbox unread"), await business_factory("inbox unread other")
    agent, colleague = await person(api, db, tenant.tenant_id), await person(api, db, tenant.tenant_id)
    outsider = await person(api, db, other.tenant_id)
    # Online, the agent is handed the conversation at once (a queued customer would get the waiting
    # acknowledgement, an outbound message racing the second question for the last place).
    online = await api.put("/v1/agents/me/presence", headers=agent.auth, json={"status": "online"})
    assert online.status_code == 200, online.text
    wa_id = f"1555{fresh_id()[:7]}"
    key = tenant.conversation(wa_id)
    await customer_writes(sim, db, tenant, wa_id, "I have a question about my invoice")
    await customer_writes(sim, db, tenant, wa_id, "It shows the wrong amount")
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM conversations WHERE key = :k", k=key),
                   what="the conversation to be stored")

    assert await _unread(api, agent, key) == 2 and await _unread(api, colleague, key) == 2
    listed = (await _items(api, agent.auth))[key]
    assert listed["last_message"]["direction"] == "inbound"
    assert listed["last_message"]["text"] == "It shows the wrong amount"

    marked = await api.post(f"/v1/conversations/{key}/read", headers=agent.auth)
    assert marked.status_code == 200, marked.text
    assert marked.json()["unread"] == 0 and marked.json()["conversation_key"] == key
    assert await _unread(api, agent, key) == 0
    assert await _unread(api, colleague, key) == 2  # each user's own marker
    shown = (await api.get(f"/v1/conversations/{key}", headers=agent.auth)).json()
    assert shown["unread"] == 0 and shown["last_message"]["text"] == "It shows the wrong amount"

    await customer_writes(sim, db, tenant, wa_id, "The amount is still wrong")
    assert await _unread(api, agent, key) == 1 and await _unread(api, colleague, key) == 3
    again = await api.post(f"/v1/conversations/{key}/read", headers=agent.auth)
    assert again.json()["last_read_id"] > marked.json()["last_read_id"]
    assert await _unread(api, agent, key) == 0

    # Another tenant's user cannot mark (or learn of) this conversation; an API key has no read marker.
    assert (await api.post(f"/v1/conversations/{key}/read", headers=outsider.auth)).status_code == 404
    assert (await api.post(f"/v1/conversations/{key}/read", headers=tenant.auth)).status_code == 403
    assert (await api.post(f"/v1/conversations/{other.conversation(wa_id)}/read",
                           headers=agent.auth)).status_code == 404
    assert await scalar(db, "SELECT count(*) FROM conversation_reads WHERE conversation_key = :k", k=key) == 1
    assert await _unread(api, colleague, key) == 3


async def test_the_thread_names_who_sent_each_message(api: httpx.AsyncClient, db: AsyncEngine,
                                                      sim: httpx.AsyncClient,
                                                      business_factory: BusinessFactory) -> None:
    tenant = await business_factory("inbox thread")
    agent = await person(api, db, tenant.tenant_id)
    named = await api.put(f"/v1/agents/{agent.user_id}", headers=tenant.auth,
                          json={"display_name": "Ana", "capacity": 5})
    assert named.status_code == 200, named.text
    wa_id = f"1555{fresh_id()[:7]}"
    key = tenant.conversation(wa_id)
    await customer_writes(sim, db, tenant, wa_id, "hello")  # small talk: the AI answers

    async def kinds() -> list[str]:
        page = (await api.get(f"/v1/conversations/{key}/thread", headers=agent.auth)).json()
        return sorted(m["sender"]["kind"] for m in page["messages"])

    await wait_for(lambda: _has(kinds(), "ai"), what="the AI's answer (an agent's reply would revoke it)")
    by_agent = await api.post(f"/v1/conversations/{key}/reply", headers=agent.auth, json={"message": TEXT})
    assert by_agent.status_code == 202, by_agent.text
    by_api = await api.post(f"/v1/conversations/{key}/reply", headers=tenant.auth, json={"message": TEXT})
    assert by_api.status_code == 202, by_api.text

    async def senders() -> dict[str, Any] | None:
        page = (await api.get(f"/v1/conversations/{key}/thread", headers=agent.auth)).json()
        found = {m["id"] or m["wamid"]: m["sender"] for m in page["messages"]}
        kinds = sorted(s["kind"] for s in found.values())
        return found if kinds == ["agent", "ai", "api", "customer"] else None

    found = await wait_for(senders, what="the customer's, the AI's, the agent's and the API's messages")
    assert found[by_agent.json()["id"]] == {"kind": "agent", "id": agent.user_id, "name": "Ana"}
    assert found[by_api.json()["id"]]["kind"] == "api" and found[by_api.json()["id"]]["name"] == "tests"
    ai = next(s for s in found.values() if s["kind"] == "ai")
    assert ai["name"] == "AI agent"
    page = (await api.get(f"/v1/conversations/{key}/thread", headers=agent.auth, params={"limit": 1})).json()
    assert len(page["messages"]) == 1 and page["next"] is not None
    other = await business_factory("inbox thread other")
    assert (await api.get(f"/v1/conversations/{key}/thread", headers=other.auth)).status_code == 404


async def _has(found: Any, kind: str) -> bool:
    return kind in await found


async def test_a_template_reply_and_the_contacts_history(api: httpx.AsyncClient, db: AsyncEngine,
                                                         sim: httpx.AsyncClient,
                                                         business_factory: BusinessFactory) -> None:
    tenant = await business_factory("inbox template")
    template = await approved_template(api, tenant, f"order_update_{fresh_id()[:6]}")
    agent = await person(api, db, tenant.tenant_id)
    wa_id = f"1555{fresh_id()[:7]}"
    key = tenant.conversation(wa_id)
    await customer_writes(sim, db, tenant, wa_id, "I have a question")
    url = f"/v1/conversations/{key}/reply"

    refused = {
        "missing value": {"template": {"id": template["id"], "values": {"body.1": "Ann"}}},
        "unknown variable": {"template": {"id": template["id"], "values": {"body.1": "Ann", "body.2": "#1",
                                                                           "body.3": "x"}}},
        "unknown template": {"template": {"id": "00000000-0000-4000-8000-000000000000", "values": {}}},
        "both": {"template": {"id": template["id"], "values": {}}, "message": TEXT},
        "neither": {},
    }
    for what, body in refused.items():
        answer = await api.post(url, headers=agent.auth, json=body)
        assert answer.status_code == 422, (what, answer.text)
    mismatch = await api.post(url, headers=agent.auth, json=refused["missing value"])
    assert mismatch.json()["detail"]["code"] == "template_parameter_mismatch"

    sent = await api.post(url, headers=agent.auth, json={"template": {
        "id": template["id"], "values": {"body.1": "Ann", "body.2": "#42"}}})
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]

    async def delivered() -> dict[str, Any] | None:
        body = (await api.get(f"/v1/messages/{message_id}", headers=agent.auth)).json()
        return body if body.get("status") in ("delivered", "read") else None

    assert (await wait_for(delivered, what="the template message to be delivered"))["type"] == "template"
    thread = (await api.get(f"/v1/conversations/{key}/thread", headers=agent.auth)).json()["messages"]
    shown = next(m for m in thread if m["id"] == message_id)
    assert shown["text"] == "Hi Ann, your order #42 has shipped.\nAerostic test shop"
    assert shown["sender"]["kind"] == "agent" and shown["sender"]["id"] == agent.user_id
    graph = (await sim.get("/_sim/requests", params={"phone_number_id": tenant.phone_number_id})).json()["data"]
    body = next(r["body"] for r in graph if r["biz_opaque_callback_data"] == f"{tenant.tenant_id}:{message_id}")
    assert body["template"] == {"name": template["name"], "language": {"code": "en_US"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "#42"}]}]}

    resolved = await api.post(f"/v1/conversations/{key}/resolve", headers=agent.auth)
    assert resolved.status_code == 202, resolved.text

    async def history() -> dict[str, Any] | None:
        found = (await api.get(f"/v1/conversations/{key}/history", headers=agent.auth)).json()
        return found if found["conversations"] else None

    found = await wait_for(history, what="the resolved episode in the contact's history")
    assert found["conversations"][0]["conversation_key"] == key
    assert found["conversations"][0]["closed_at"] is not None and found["campaigns"] == []
    other = await business_factory("inbox template other")
    assert (await api.get(f"/v1/conversations/{key}/history", headers=other.auth)).status_code == 404
    assert (await api.post(url, headers=other.auth, json={"template": {
        "id": template["id"], "values": {"body.1": "Ann", "body.2": "#42"}}})).status_code == 404


async def test_unread_counts_stop_at_99(api: httpx.AsyncClient, db: AsyncEngine,
                                        business_factory: BusinessFactory) -> None:
    tenant = await business_factory("inbox unread cap")
    agent = await person(api, db, tenant.tenant_id)
    busy = await seed(db, tenant, fresh_id(), name="Busy Customer")
    quiet = await seed(db, tenant, fresh_id(), name="Quiet Customer", minutes_ago=1)
    async with db.begin() as conn:  # as the projector writes a customer's messages
        await conn.execute(insert(messages), [
            {"tenant_id": tenant.tenant_id, "wamid": f"wamid.cap-{fresh_id()}-{i}", "conversation_key": busy,
             "direction": "inbound", "type": "text", "text": f"message {i}"} for i in range(120)])
    listed = await _items(api, agent.auth)
    assert (listed[busy]["unread"], listed[quiet]["unread"]) == (99, 0)
    assert listed[busy]["last_message"]["text"] == "message 119"
    assert (await api.post(f"/v1/conversations/{busy}/read", headers=agent.auth)).json()["unread"] == 0
    assert (await api.post(f"/v1/conversations/{quiet}/read", headers=agent.auth)).status_code == 200
    async with db.begin() as conn:  # one more customer message after both markers
        await conn.execute(insert(messages).values(
            tenant_id=tenant.tenant_id, wamid=f"wamid.cap-{fresh_id()}", conversation_key=quiet,
            direction="inbound", type="text", text="one more"))
    listed = await _items(api, agent.auth)  # both listed conversations have a marker of this user
    assert (listed[busy]["unread"], listed[quiet]["unread"]) == (0, 1)
