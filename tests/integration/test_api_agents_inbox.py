"""``/v1/agents`` and the inbox (``/v1/conversations``) over HTTP against the real stack.

Listings are checked on conversations written straight into PostgreSQL (as the projector writes
them, at a version the processor's own events never overwrite), so that every filter has an exact
expected answer; the live tests let a simulated customer write. Actions are checked on the
``conversations.commands`` topic: what the processor then does is tested with the processor.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.assignment import Assigner
from config import redis_keys
from config.settings import CoreSettings
from db.tables import contacts, conversations
from stack.launcher import LocalStack
from tests.integration.helpers import Business, BusinessFactory, customer_writes, fresh_id, scalar, wait_for
from tests.integration.people import Person, commands, person, redis_client

ASYNC = pytest.mark.asyncio(loop_scope="session")
TEXT = {"type": "text", "text": {"body": "Thanks, an agent is on it"}}


async def seed(db: AsyncEngine, business: Business, wa_id: str, *, name: str | None = None, minutes_ago: int = 0,
               inbound_minutes_ago: int | None = None, state: str = "bot", assignee: str | None = None,
               team: str | None = None, tags: tuple[str, ...] = (), attributes: dict[str, str] | None = None,
               opted_out: bool = False) -> str:
    """A conversation and its contact as the projector writes them; returns the conversation key."""
    now, key = datetime.now(UTC), business.conversation(wa_id)
    inbound = now - timedelta(minutes=minutes_ago if inbound_minutes_ago is None else inbound_minutes_ago)
    async with db.begin() as conn:
        await conn.execute(insert(conversations).values(
            key=key, tenant_id=business.tenant_id, phone_number_id=business.phone_number_id, wa_id=wa_id,
            last_message_at=now - timedelta(minutes=minutes_ago), last_inbound_at=inbound, state=state,
            assignee_id=assignee, team=team, version=1000, state_changed_at=now))
        await conn.execute(insert(contacts).values(tenant_id=business.tenant_id, wa_id=wa_id, profile_name=name,
                                                   tags=list(tags), attributes=attributes or {}, opted_out=opted_out))
    return key


async def listed(api: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[str]:
    response = await api.get("/v1/conversations", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return [c["key"] for c in response.json()["items"]]


async def agents(api: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = await api.get("/v1/agents", headers=auth)
    assert response.status_code == 200, response.text
    return {a["user_id"]: a for a in response.json()["items"]}


async def key_id(api: httpx.AsyncClient, business: Business) -> str:
    return str((await api.get("/v1/me", headers=business.auth)).json()["key_id"])


# --- agents ----------------------------------------------------------------------------------------

@ASYNC
async def test_admins_configure_agents(api: httpx.AsyncClient, db: AsyncEngine, settings: CoreSettings,
                                       business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("agents config"), await business_factory("agents config other")
    admin, agent = await person(api, db, tenant.tenant_id, "admin"), await person(api, db, tenant.tenant_id)
    outsider = await person(api, db, other.tenant_id)
    roster = await agents(api, agent.auth)
    assert set(roster) == {admin.user_id, agent.user_id}
    assert roster[agent.user_id] == {"user_id": agent.user_id, "email": agent.email, "role": "agent",
                                     "display_name": None, "capacity": 5, "teams": [], "presence": "offline",
                                     "open_conversations": 0}

    url = f"/v1/agents/{agent.user_id}"
    saved = await api.put(url, headers=admin.auth, json={"display_name": " Ana ", "capacity": 3,
                                                         "teams": ["sales", " vip", "sales"]})
    assert saved.status_code == 200, saved.text
    assert (saved.json()["display_name"], saved.json()["capacity"], saved.json()["teams"]) == ("Ana", 3,
                                                                                              ["sales", "vip"])
    assert (await agents(api, tenant.auth))[agent.user_id] == saved.json()
    redis = redis_client(settings)
    try:
        assert await redis.hgetall(redis_keys.agent(tenant.tenant_id, agent.user_id)) == {"capacity": "3",
                                                                                          "teams": "sales,vip"}
        assert agent.user_id in await redis.smembers(redis_keys.tenant_agents(tenant.tenant_id))
    finally:
        await redis.aclose()
    kept = await api.put(url, headers=tenant.auth, json={"capacity": 4, "teams": []})
    assert (kept.json()["display_name"], kept.json()["capacity"]) == ("Ana", 4)  # not given: unchanged
    cleared = await api.put(url, headers=tenant.auth, json={"display_name": None, "capacity": 4})
    assert cleared.json()["display_name"] is None

    for bad in ({"capacity": 101}, {"capacity": -1}, {"capacity": 2, "teams": ["a,b"]}, {"capacity": 2, "teams": [""]},
                {"teams": []}, {"capacity": 2, "role": "admin"}):
        assert (await api.put(url, headers=tenant.auth, json=bad)).status_code == 422, bad
    assert (await api.put(url, headers=agent.auth, json={"capacity": 100})).status_code == 403
    for stranger in (outsider.user_id, str(uuid.uuid4())):
        answer = await api.put(f"/v1/agents/{stranger}", headers=tenant.auth, json={"capacity": 1})
        assert answer.status_code == 404, answer.text
    assert outsider.user_id not in await agents(api, tenant.auth)


@ASYNC
async def test_presence_follows_the_heartbeat(api: httpx.AsyncClient, db: AsyncEngine, settings: CoreSettings,
                                              business_factory: BusinessFactory) -> None:
    tenant = await business_factory("presence")
    agent = await person(api, db, tenant.tenant_id)
    online = await api.put("/v1/agents/me/presence", headers=agent.auth, json={"status": "online"})
    assert online.status_code == 200, online.text
    assert online.json() == {"status": "online", "expires_in_s": 60, "claimed": []}
    assert (await agents(api, tenant.auth))[agent.user_id]["presence"] == "online"
    assert await scalar(db, "SELECT capacity FROM agents WHERE user_id = :u", u=agent.user_id) == 5  # row created
    redis = redis_client(settings)
    try:
        assert 0 < await redis.ttl(redis_keys.agent_presence(tenant.tenant_id, agent.user_id)) <= 60
    finally:
        await redis.aclose()

    away = await api.put("/v1/agents/me/presence", headers=agent.auth, json={"status": "away"})
    assert away.json()["status"] == "away"
    assert (await agents(api, agent.auth))[agent.user_id]["presence"] == "away"
    offline = await api.put("/v1/agents/me/presence", headers=agent.auth, json={"status": "offline"})
    assert offline.json() == {"status": "offline", "expires_in_s": None, "claimed": []}
    assert (await agents(api, agent.auth))[agent.user_id]["presence"] == "offline"

    assert (await api.put("/v1/agents/me/presence", headers=tenant.auth, json={"status": "online"})).status_code == 403
    assert (await api.put("/v1/agents/me/presence", headers=agent.auth, json={"status": "busy"})).status_code == 422


@ASYNC
async def test_an_agent_coming_online_claims_the_oldest_queued_conversations(
        api: httpx.AsyncClient, db: AsyncEngine, settings: CoreSettings, stack: LocalStack,
        business_factory: BusinessFactory) -> None:
    tenant = await business_factory("claims")
    agent = await person(api, db, tenant.tenant_id)
    assert (await api.put(f"/v1/agents/{agent.user_id}", headers=tenant.auth,
                          json={"capacity": 2, "teams": ["sales"]})).status_code == 200
    redis = redis_client(settings)
    try:
        assigner = Assigner(redis)
        # Queued by the conversation processor itself (a reopen goes to nobody's team, a transfer to the
        # team's), one after the other: a claim it applies must find the conversation queued, or it gives
        # the agent's room back and the claim loop would take one more.
        oldest, sales, billing, newest = [await seed(db, tenant, fresh_id()) for _ in range(4)]
        for key, team in ((oldest, None), (sales, "sales"), (billing, "billing"), (newest, None)):
            action = api.post(f"/v1/conversations/{key}/transfer", headers=tenant.auth, json={"team": team}) \
                if team else api.post(f"/v1/conversations/{key}/reopen", headers=tenant.auth)
            assert (await action).status_code == 202

            async def queued(key: str = key, team: str | None = team) -> bool:
                return key in await assigner.queued(tenant.tenant_id, team)
            await wait_for(queued, timeout=30, what=f"{key} queued by the processor")

        online = await api.put("/v1/agents/me/presence", headers=agent.auth, json={"status": "online"})
        assert online.status_code == 200, online.text
        assert online.json()["claimed"] == [oldest, sales]  # capacity 2; billing is not its team
        assert await assigner.queued(tenant.tenant_id) == [newest]
        assert await assigner.queued(tenant.tenant_id, "billing") == [billing]
    finally:
        await redis.aclose()
    published = await commands(stack, tenant.tenant_id, kind="conversation_command", least=6)  # 4 queued, 2 claims
    claims = [c for c in published if c["action"] == "claim"]
    assert sorted((c["conversation_key"], c["action"], c["agent_id"], c["actor"]) for c in claims) == sorted(
        (key, "claim", agent.user_id, agent.actor) for key in (oldest, sales))


# --- the inbox ---------------------------------------------------------------------------------------

@ASYNC
async def test_the_inbox_lists_filters_searches_and_pages(api: httpx.AsyncClient, db: AsyncEngine,
                                                          business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("inbox"), await business_factory("inbox other")
    agent = await person(api, db, tenant.tenant_id)
    c1 = await seed(db, tenant, "16505551001", name="Alice Martin", minutes_ago=1, state="agent",
                    assignee=agent.user_id, team="sales", tags=("vip",))
    c2 = await seed(db, tenant, "16505551002", name="Bob Stone", minutes_ago=2, state="queued", team="sales")
    c3 = await seed(db, tenant, "16505551003", name="alice cooper", minutes_ago=3, state="queued", team="billing")
    c4 = await seed(db, tenant, "4915112345678", minutes_ago=4)
    c5 = await seed(db, tenant, "16505551005", name="Carol 100%", minutes_ago=5, state="closed",
                    assignee=agent.user_id, opted_out=True)
    await seed(db, other, "16505551001", name="Alice Other", minutes_ago=0, state="queued", team="sales")

    assert await listed(api, tenant.auth) == [c1, c2, c3, c4, c5]
    assert await listed(api, agent.auth, view="mine") == [c1, c5]
    assert await listed(api, agent.auth, view="queued") == [c2, c3]
    assert await listed(api, agent.auth, view="queued", team="sales") == [c2]
    assert await listed(api, agent.auth, state="closed") == [c5]
    assert await listed(api, agent.auth, view="mine", state="agent") == [c1]
    assert await listed(api, agent.auth, q="alice") == [c1, c3]
    assert await listed(api, agent.auth, q="ALICE MAR") == [c1]
    assert await listed(api, agent.auth, q="+49 151") == [c4]
    assert await listed(api, agent.auth, q="555100") == [c1, c2, c3, c5]
    assert await listed(api, agent.auth, q="100%") == [c5]  # wildcards are literal
    assert await listed(api, agent.auth, q="%") == [c5]
    assert await listed(api, agent.auth, q="nobody") == []

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/conversations", headers=agent.auth, params=params)).json()
        pages.append([c["key"] for c in page["items"]])
        if (cursor := page["next_cursor"]) is None:
            break
    assert pages == [[c1, c2], [c3, c4], [c5]]

    first = (await api.get("/v1/conversations", headers=agent.auth, params={"limit": 1})).json()["items"][0]
    assert (first["profile_name"], first["tags"], first["opted_out"], first["state"], first["team"]) == (
        "Alice Martin", ["vip"], False, "agent", "sales")
    assert first["assignee_id"] == agent.user_id
    window = datetime.fromisoformat(first["window_open_until"]) - datetime.fromisoformat(first["last_inbound_at"])
    assert window == timedelta(hours=24)

    # An API key is nobody's assignee.
    assert (await api.get("/v1/conversations", headers=tenant.auth, params={"view": "mine"})).status_code == 422
    for params in ({"cursor": "not-a-cursor"}, {"state": "sleeping"}, {"view": "theirs"}, {"limit": 0},
                   {"limit": 201}, {"team": "a,b"}):
        assert (await api.get("/v1/conversations", headers=agent.auth, params=params)).status_code == 422, params


@ASYNC
async def test_one_conversation_with_its_contact(api: httpx.AsyncClient, db: AsyncEngine,
                                                 business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("inbox detail"), await business_factory("inbox detail other")
    key = await seed(db, tenant, "16505552001", name="Dana", minutes_ago=10, inbound_minutes_ago=30 * 60,
                     state="queued", team="billing", tags=("returning",), attributes={"plan": "gold"})
    found = await api.get(f"/v1/conversations/{key}", headers=tenant.auth)
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["key"], body["wa_id"], body["phone_number_id"]) == (key, "16505552001", tenant.phone_number_id)
    assert (body["state"], body["team"], body["version"]) == ("queued", "billing", 1000)
    assert (body["tags"], body["attributes"], body["opted_out"]) == (["returning"], {"plan": "gold"}, False)
    assert datetime.fromisoformat(body["window_open_until"]) < datetime.now(UTC)  # 30 h ago: closed
    assert (await api.get(f"/v1/conversations/{key}", headers=other.auth)).status_code == 404
    assert (await api.get(f"/v1/conversations/{tenant.conversation('1999')}", headers=tenant.auth)).status_code == 404


@ASYNC
async def test_a_customer_conversation_reaches_the_inbox_and_an_agent_replies(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        business_factory: BusinessFactory) -> None:
    tenant = await business_factory("inbox live")
    agent = await person(api, db, tenant.tenant_id)
    wa_id = fresh_id()
    await customer_writes(sim, db, tenant, wa_id, text="my parcel is late")
    key = tenant.conversation(wa_id)
    assert key in await wait_for(lambda: listed(api, agent.auth), what="the conversation in the inbox")
    detail = (await api.get(f"/v1/conversations/{key}", headers=agent.auth)).json()
    assert datetime.fromisoformat(detail["window_open_until"]) > datetime.now(UTC)

    sent = await api.post(f"/v1/conversations/{key}/reply", headers=agent.auth,
                          json={"message": TEXT, "idempotency_key": f"reply-{wa_id}"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["conversation_key"] == key and sent.json()["status"] == "queued"
    again = await api.post(f"/v1/conversations/{key}/reply", headers=agent.auth,
                           json={"message": TEXT, "idempotency_key": f"reply-{wa_id}"})
    assert again.json() == {**sent.json(), "duplicate": True}
    by_key = await api.post(f"/v1/conversations/{key}/reply", headers=tenant.auth, json={"message": TEXT})
    assert by_key.status_code == 202, by_key.text

    sends = {c["message_id"]: c for c in await commands(stack, tenant.tenant_id, kind="send", least=2)}
    mine, theirs = sends[sent.json()["id"]], sends[by_key.json()["id"]]
    assert (mine["author"], mine["requested_by"], mine["to"], mine["phone_number_id"]) == (
        "agent", agent.actor, wa_id, tenant.phone_number_id)
    assert mine["message"] == TEXT
    assert theirs["author"] == "api" and theirs["requested_by"].startswith("api_key:")
    assert (await api.get(f"/v1/messages/{sent.json()['id']}", headers=agent.auth)).status_code == 200

    async def taken_over() -> bool:
        found = (await api.get(f"/v1/conversations/{key}", headers=agent.auth)).json()
        return bool(found["state"] == "agent" and found["assignee_id"] == agent.user_id)

    await wait_for(taken_over, what="the agent's reply to take the conversation over")


@ASYNC
async def test_a_free_form_reply_after_the_window_fails_with_a_reason(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("inbox window")
    key = await seed(db, tenant, fresh_id(), minutes_ago=2 * 24 * 60)
    sent = await api.post(f"/v1/conversations/{key}/reply", headers=tenant.auth, json={"message": TEXT})
    assert sent.status_code == 202, sent.text

    async def failed() -> dict[str, Any] | None:
        found = (await api.get(f"/v1/messages/{sent.json()['id']}", headers=tenant.auth)).json()
        return found if found["status"] == "failed" else None

    message = await wait_for(failed, what="the reply to fail")
    assert message["error"]["title"] == "outside_service_window"
    assert "template" in message["error"]["details"]


@ASYNC
async def test_bad_replies_are_refused(api: httpx.AsyncClient, db: AsyncEngine,
                                       business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("inbox bad replies"), await business_factory("inbox bad replies 2")
    key = await seed(db, tenant, fresh_id())
    for body in ({"message": {"type": "text"}}, {"message": {"type": "text", "text": {"body": ""}}},
                 {"message": {"type": "text", "text": {"body": "hi"}, "to": "15550001111"}},
                 {"message": {"type": "image", "image": {"link": "ftp://x"}}}, {"text": "hi"},
                 {"message": TEXT, "idempotency_key": "has spaces"}):
        answer = await api.post(f"/v1/conversations/{key}/reply", headers=tenant.auth, json=body)
        assert answer.status_code == 422, (body, answer.text)
    answer = await api.post(f"/v1/conversations/{key}/reply", headers=other.auth, json={"message": TEXT})
    assert answer.status_code == 404


@ASYNC
async def test_actions_publish_their_commands(api: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
                                              business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("inbox actions"), await business_factory("inbox actions other")
    agent, colleague = await person(api, db, tenant.tenant_id), await person(api, db, tenant.tenant_id)
    outsider = await person(api, db, other.tenant_id)
    key = await seed(db, tenant, fresh_id(), state="agent", assignee=agent.user_id)
    url = f"/v1/conversations/{key}"

    accepted = [await api.post(f"{url}/assign", headers=tenant.auth, json={"agent_id": colleague.user_id}),
                await api.post(f"{url}/assign", headers=agent.auth, json={"agent_id": agent.user_id}),
                await api.post(f"{url}/transfer", headers=agent.auth, json={"team": "billing"}),
                await api.post(f"{url}/transfer", headers=agent.auth, json={"agent_id": colleague.user_id}),
                await api.post(f"{url}/resolve", headers=agent.auth),
                await api.post(f"{url}/reopen", headers=tenant.auth)]
    for answer in accepted:
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] is True
    refused = [(await api.post(f"{url}/assign", headers=agent.auth, json={"agent_id": colleague.user_id}), 403),
               (await api.post(f"{url}/assign", headers=tenant.auth, json={"agent_id": str(uuid.uuid4())}), 422),
               (await api.post(f"{url}/assign", headers=tenant.auth, json={"agent_id": outsider.user_id}), 422),
               (await api.post(f"{url}/assign", headers=tenant.auth, json={"agent_id": "me"}), 422),
               (await api.post(f"{url}/transfer", headers=agent.auth, json={}), 422),
               (await api.post(f"{url}/transfer", headers=agent.auth,
                               json={"team": "billing", "agent_id": colleague.user_id}), 422),
               (await api.post(f"{url}/transfer", headers=agent.auth, json={"agent_id": outsider.user_id}), 422),
               (await api.post(f"{url}/transfer", headers=colleague.auth, json={"team": "billing"}), 403),
               (await api.post(f"{url}/resolve", headers=colleague.auth), 403),
               (await api.post(f"/v1/conversations/{key}/resolve", headers=outsider.auth), 404),
               (await api.post(f"/v1/conversations/{key}/assign", headers=other.auth,
                               json={"agent_id": outsider.user_id}), 404)]
    assert [(a.status_code, expected) for a, expected in refused] == [(e, e) for _, e in refused]

    published = {c["event_id"]: c for c in await commands(stack, tenant.tenant_id, kind="conversation_command",
                                                          least=len(accepted))}
    assert len(published) == len(accepted)  # the refused ones published nothing
    api_key = f"api_key:{await key_id(api, tenant)}"
    got = [published[a.json()["command_id"]] for a in accepted]
    assert [(c["action"], c.get("agent_id"), c.get("team"), c["actor"]) for c in got] == [
        ("assign", colleague.user_id, None, api_key),
        ("assign", agent.user_id, None, agent.actor),
        ("transfer", None, "billing", agent.actor),
        ("transfer", colleague.user_id, None, agent.actor),
        ("resolve", None, None, agent.actor),
        ("reopen", None, None, api_key)]
    assert all(c["conversation_key"] == key and c["tenant_id"] == tenant.tenant_id for c in got)


@ASYNC
async def test_an_agent_acts_only_on_conversations_that_are_theirs_or_nobodys(
        api: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack, business_factory: BusinessFactory) -> None:
    """Agents reply to and resolve their own or unassigned conversations, transfer only their own; admins
    and API keys act on any. A refusal is a 403 that says why, and publishes nothing."""
    tenant = await business_factory("inbox limits")
    agent, colleague = await person(api, db, tenant.tenant_id), await person(api, db, tenant.tenant_id)
    admin = await person(api, db, tenant.tenant_id, "admin")
    mine = await seed(db, tenant, fresh_id(), state="agent", assignee=agent.user_id)
    theirs = await seed(db, tenant, fresh_id(), state="agent", assignee=colleague.user_id)
    nobodys = await seed(db, tenant, fresh_id(), state="queued", team="sales")

    async def reply(key: str, auth: dict[str, str]) -> httpx.Response:
        return await api.post(f"/v1/conversations/{key}/reply", headers=auth, json={"message": TEXT})

    sent = [await reply(mine, agent.auth), await reply(nobodys, agent.auth), await reply(theirs, admin.auth),
            await reply(theirs, tenant.auth)]
    assert [r.status_code for r in sent] == [202] * 4, [r.text for r in sent]
    taken = await reply(theirs, agent.auth)
    assert taken.status_code == 403
    assert taken.json()["detail"] == ("this conversation is assigned to a colleague: an agent may reply to only "
                                      "conversations assigned to them or to nobody (an admin can reassign it)")

    for key, body, expected in ((theirs, {"team": "billing"}, 403), (nobodys, {"team": "billing"}, 403),
                                (theirs, {"agent_id": agent.user_id}, 403), (mine, {"team": "billing"}, 202)):
        answer = await api.post(f"/v1/conversations/{key}/transfer", headers=agent.auth, json=body)
        assert answer.status_code == expected, (key, body, answer.text)
    held = await api.post(f"/v1/conversations/{nobodys}/transfer", headers=agent.auth, json={"team": "billing"})
    assert "an agent may transfer only conversations they hold" in held.json()["detail"]
    assert (await api.post(f"/v1/conversations/{theirs}/transfer", headers=admin.auth,
                           json={"agent_id": agent.user_id})).status_code == 202
    assert (await api.post(f"/v1/conversations/{theirs}/resolve", headers=agent.auth)).status_code == 403
    assert (await api.post(f"/v1/conversations/{nobodys}/resolve", headers=agent.auth)).status_code == 202

    sends = await commands(stack, tenant.tenant_id, kind="send", least=len(sent))
    assert sorted(s["message_id"] for s in sends) == sorted(r.json()["id"] for r in sent)
    assert {s["to"] for s in sends if s["requested_by"] == agent.actor} == {
        key.partition(":")[2] for key in (mine, nobodys)}
    moves = await commands(stack, tenant.tenant_id, kind="conversation_command", least=3)
    assert sorted((c["conversation_key"], c["action"], c["actor"]) for c in moves) == sorted([
        (mine, "transfer", agent.actor), (theirs, "transfer", admin.actor), (nobodys, "resolve", agent.actor)])


@ASYNC
async def test_notes(api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("inbox notes"), await business_factory("inbox notes other")
    agent: Person = await person(api, db, tenant.tenant_id)
    key = await seed(db, tenant, fresh_id())
    url = f"/v1/conversations/{key}/notes"
    first = await api.post(url, headers=agent.auth, json={"text": "  Customer prefers email  "})
    assert first.status_code == 201, first.text
    assert (first.json()["author"], first.json()["text"]) == (agent.actor, "Customer prefers email")
    second = await api.post(url, headers=tenant.auth, json={"text": "Refund approved"})
    assert second.json()["author"] == f"api_key:{await key_id(api, tenant)}"
    notes = await api.get(url, headers=agent.auth)
    assert [n["id"] for n in notes.json()["items"]] == [first.json()["id"], second.json()["id"]]
    for body in ({"text": "   "}, {"text": "x" * 5001}, {}):
        assert (await api.post(url, headers=agent.auth, json=body)).status_code == 422
    assert (await api.get(url, headers=other.auth)).status_code == 404
    assert (await api.post(url, headers=other.auth, json={"text": "hi"})).status_code == 404
    assert len((await api.get(url, headers=agent.auth)).json()) == 2
