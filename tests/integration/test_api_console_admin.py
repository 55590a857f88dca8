"""The API the admin pages added: paged rule executions, ``POST /v1/ai/try``, knowledge search, ``GET /v1/teams``
(real ingress, PostgreSQL and Redis)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ai_models import MAX_TRY_QUESTION
from db.tables import conversations, rule_executions
from tests.integration.helpers import BusinessFactory, fresh_id
from tests.integration.people import person

ASYNC = pytest.mark.asyncio(loop_scope="session")
RULE = {"name": "hours", "trigger": {"type": "keyword", "keywords": ["hours"]},
        "actions": [{"type": "add_tag", "tag": "hours"}]}
HOURS = {"question": "What are your opening hours?", "answer": "We are open 9:00 to 17:00, Monday to Friday.",
         "keywords": ["open", "hours"]}


async def _rule(api: httpx.AsyncClient, auth: dict[str, str]) -> str:
    created = await api.post("/v1/automations", headers=auth, json=RULE)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@ASYNC
async def test_executions_are_paged_newest_first_and_scoped_to_the_tenant(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("executions paged"), await business_factory("executions paged other")
    rule_id = await _rule(api, tenant.auth)
    now = datetime.now(UTC)
    same_moment = now - timedelta(minutes=1)  # two runs of one instant: the event id orders them
    async with db.begin() as conn:
        for i, at in enumerate([now - timedelta(minutes=m) for m in range(5)] + [same_moment]):
            await conn.execute(insert(rule_executions).values(
                event_id=f"paged-{i}-{uuid.uuid4()}", tenant_id=tenant.tenant_id, rule_id=rule_id, rule_name="hours",
                conversation_key=f"{tenant.phone_number_id}:1555100{i}", trigger_event=f"wamid.{i}",
                actions=[{"type": "add_tag", "tag": "hours"}], stopped=False, executed_at=at))
        await conn.execute(insert(rule_executions).values(  # another tenant's run under the same rule id
            event_id=f"paged-other-{uuid.uuid4()}", tenant_id=other.tenant_id, rule_id=rule_id, rule_name="hours",
            conversation_key=f"{other.phone_number_id}:15551009", trigger_event="wamid.other", actions=[],
            stopped=False, executed_at=now))
    url = f"/v1/automations/{rule_id}/executions"
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await api.get(url, headers=tenant.auth, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        seen += [e["trigger_event"] for e in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 6
    assert seen[0] == "wamid.0" and seen[-1] == "wamid.4" and "wamid.other" not in seen
    times = [e["executed_at"] for e in (await api.get(url, headers=tenant.auth)).json()["items"]]
    assert times == sorted(times, reverse=True)
    # The other tenant does not see the rule or its runs; a forged cursor is refused.
    assert (await api.get(url, headers=other.auth)).status_code == 404
    assert (await api.get(url, headers=tenant.auth, params={"cursor": "not-a-cursor"})).status_code == 422
    assert (await api.get(url, headers=tenant.auth, params={"limit": 201})).status_code == 422


@ASYNC
async def test_try_answers_at_the_threshold_and_bounds_its_input(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("ai try")
    empty = await api.post("/v1/ai/try", headers=tenant.auth, json={"question": "What are your opening hours?"})
    assert empty.status_code == 200, empty.text
    assert empty.json()["outcome"] == "handoff" and empty.json()["would_send"] is False
    assert (await api.post("/v1/knowledge", headers=tenant.auth, json=HOURS)).status_code == 201

    sent = await api.post("/v1/ai/try", headers=tenant.auth, json={"question": "What are your opening hours?"})
    assert sent.status_code == 200, sent.text
    answer = sent.json()
    assert answer["would_send"] is True and answer["outcome"] == "reply"
    assert answer["reply"] == HOURS["answer"] and answer["threshold"] == 0.7 and answer["confidence"] >= 0.7
    assert answer["tenant_provider"] == "offline" and answer["note"] is None

    held = await api.post("/v1/ai/try", headers=tenant.auth, json={"question": "When do you open?",
                                                                   "threshold": 1.0})
    assert held.status_code == 200, held.text
    paraphrase = held.json()
    assert paraphrase["threshold"] == 1.0 and paraphrase["would_send"] is (paraphrase["confidence"] >= 1.0)
    if not paraphrase["would_send"]:  # below the threshold: handed over, the answer found still shown
        assert paraphrase["outcome"] == "handoff" and paraphrase["reply"] == HOURS["answer"]
        assert paraphrase["reason"].startswith("confidence ")

    assert (await api.put("/v1/settings/ai", headers=tenant.auth,
                          json={"provider": "off", "threshold": 0.7})).status_code == 200
    off = (await api.post("/v1/ai/try", headers=tenant.auth, json={"question": "What are your opening hours?"})).json()
    assert off["would_send"] is False and off["tenant_provider"] == "off" and off["note"]

    for bad in ({"question": ""}, {"question": "   "}, {"question": "x" * (MAX_TRY_QUESTION + 1)},
                {"question": "hours?", "threshold": 1.5}, {"question": "hours?", "threshold": -0.1},
                {"question": "hours?", "extra": 1}, {}):
        refused = await api.post("/v1/ai/try", headers=tenant.auth, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
    agent = await person(api, db, tenant.tenant_id, role="agent")
    assert (await api.post("/v1/ai/try", headers=agent.auth, json={"question": "hours?"})).status_code == 403


@ASYNC
async def test_knowledge_is_searched_within_the_tenant(api: httpx.AsyncClient,
                                                       business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("kb search"), await business_factory("kb search other")
    for body in (HOURS, {"question": "Do you ship abroad?", "answer": "Yes, to the EU.", "keywords": ["delivery"]},
                 {"question": "100% refund?", "answer": "Within 30 days.", "keywords": []}):
        assert (await api.post("/v1/knowledge", headers=tenant.auth, json=body)).status_code == 201
    assert (await api.post("/v1/knowledge", headers=other.auth, json=HOURS)).status_code == 201

    async def found(q: str, auth: dict[str, str] = tenant.auth) -> list[str]:
        response = await api.get("/v1/knowledge", headers=auth, params={"q": q})
        assert response.status_code == 200, response.text
        return [e["question"] for e in response.json()["items"]]

    assert await found("OPENING") == [HOURS["question"]]  # the question, case-insensitive
    assert await found("EU") == ["Do you ship abroad?"]  # the answer
    assert await found("deliver") == ["Do you ship abroad?"]  # a keyword
    assert await found("100%") == ["100% refund?"] and await found("%") == ["100% refund?"]  # taken literally
    assert await found("_") == []
    assert await found("nothing like it") == []
    assert len((await api.get("/v1/knowledge", headers=tenant.auth)).json()["items"]) == 3
    assert (await api.get("/v1/knowledge", headers=tenant.auth, params={"q": "x" * 201})).status_code == 422
    paged = await api.get("/v1/knowledge", headers=tenant.auth, params={"q": "o", "limit": 1})
    assert len(paged.json()["items"]) == 1 and paged.json()["next_cursor"] is not None


@ASYNC
async def test_teams_list_members_and_waiting_conversations(api: httpx.AsyncClient, db: AsyncEngine,
                                                            business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("teams"), await business_factory("teams other")
    ana = await person(api, db, tenant.tenant_id, role="agent")
    bo = await person(api, db, tenant.tenant_id, role="agent")
    stranger = await person(api, db, other.tenant_id, role="agent")
    for who, names in ((ana, ["sales", "support"]), (bo, ["support"])):
        saved = await api.put(f"/v1/agents/{who.user_id}", headers=tenant.auth, json={"capacity": 3, "teams": names})
        assert saved.status_code == 200, saved.text
    assert (await api.put(f"/v1/agents/{stranger.user_id}", headers=other.auth,
                          json={"capacity": 3, "teams": ["sales"]})).status_code == 200
    async with db.begin() as conn:  # as the projector writes them
        for business, team, state in ((tenant, "sales", "queued"), (tenant, "sales", "queued"),
                                      (tenant, "billing", "queued"), (tenant, None, "queued"),
                                      (tenant, "support", "agent"), (other, "sales", "queued")):
            wa_id = fresh_id()
            await conn.execute(insert(conversations).values(
                key=f"{business.phone_number_id}:{wa_id}", tenant_id=business.tenant_id,
                phone_number_id=business.phone_number_id, wa_id=wa_id, state=state, team=team,
                state_changed_at=datetime.now(UTC)))
    response = await api.get("/v1/teams", headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    teams = {t["team"]: t for t in body["items"]}
    assert list(teams) == ["billing", "sales", "support"]
    assert [m["email"] for m in teams["sales"]["members"]] == [ana.email]
    assert sorted(m["email"] for m in teams["support"]["members"]) == sorted([ana.email, bo.email])
    assert (teams["sales"]["waiting"], teams["support"]["waiting"], teams["billing"]["waiting"]) == (2, 0, 1)
    assert teams["billing"]["members"] == [] and body["waiting_without_team"] == 1 and body["truncated"] is False
    assert (await api.get("/v1/teams", headers=ana.auth)).status_code == 403
