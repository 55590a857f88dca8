"""``/v1/automations`` over HTTP against the real ingress, PostgreSQL and Redis (and, once, the whole pipeline)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import CoreSettings
from db.tables import automation_rules, rule_executions
from tenants.config import bump_config_version
from tests.integration.helpers import BusinessFactory, customer_writes, fresh_id, wait_for
from tests.integration.people import config_version, person, redis_client

ASYNC = pytest.mark.asyncio(loop_scope="session")


def rule(name: str = "greeting", **extra: Any) -> dict[str, Any]:
    return {"name": name, "trigger": {"type": "keyword", "keywords": ["hello"]},
            "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "Hi there"}}}], **extra}


async def create(api: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/v1/automations", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def names(api: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
    response = await api.get("/v1/automations", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [r["name"] for r in response.json()["items"]]


@ASYNC
async def test_rules_are_created_read_replaced_toggled_and_deleted(
        api: httpx.AsyncClient, settings: CoreSettings, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("automations crud")
    auth = tenant.auth
    first = await create(api, auth, rule("first"))
    second = await create(api, auth, rule("second", stop=True, conditions=[
        {"type": "contact_tags", "has": ["vip"]}, {"type": "time_window", "start": "09:00", "end": "17:00"}]))
    assert (first["position"], second["position"]) == (0, 1)
    assert first["enabled"] is True and first["stop"] is False and first["conditions"] == []
    assert second["conditions"][1] == {"type": "time_window", "days": ["mon", "tue", "wed", "thu", "fri", "sat",
                                                                       "sun"], "start": "09:00", "end": "17:00",
                                       "timezone": None}
    assert await names(api, auth) == ["first", "second"]

    fetched = await api.get(f"/v1/automations/{first['id']}", headers=auth)
    assert fetched.status_code == 200 and fetched.json() == first

    replaced = await api.put(f"/v1/automations/{first['id']}", headers=auth, json=rule(
        "first, renamed", trigger={"type": "regex", "pattern": r"^order\s+\d+$"},
        actions=[{"type": "add_tag", "tag": "orders"}, {"type": "handoff", "team": "sales"}]))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["position"] == 0 and replaced.json()["trigger"]["type"] == "regex"
    assert replaced.json()["actions"][1] == {"type": "handoff", "team": "sales", "reason": None}

    toggled = await api.patch(f"/v1/automations/{first['id']}", headers=auth, json={"enabled": False})
    assert toggled.status_code == 200 and toggled.json()["enabled"] is False
    assert toggled.json()["name"] == "first, renamed"

    deleted = await api.delete(f"/v1/automations/{first['id']}", headers=auth)
    assert deleted.status_code == 204
    assert (await api.get(f"/v1/automations/{first['id']}", headers=auth)).status_code == 404
    assert (await api.delete(f"/v1/automations/{first['id']}", headers=auth)).status_code == 404
    assert await names(api, auth) == ["second"]
    third = await create(api, auth, rule("third"))
    assert third["position"] == 2  # appended after the last one, gaps are fine


@ASYNC
@pytest.mark.parametrize("body", [
    pytest.param(rule(trigger={"type": "regex", "pattern": "(unclosed"}), id="bad regex"),
    pytest.param(rule(trigger={"type": "telepathy"}), id="unknown trigger"),
    pytest.param(rule(actions=[{"type": "launch_rockets"}]), id="unknown action"),
    pytest.param(rule(actions=[]), id="no action"),
    pytest.param(rule(conditions=[{"type": "time_window", "start": "25:00", "end": "10:00"}]), id="bad time"),
    pytest.param(rule(actions=[{"type": "reply", "message": {"text": "hi"}}]), id="reply without a type"),
    pytest.param(rule(name=""), id="empty name"),
    pytest.param(rule(colour="blue"), id="unknown field"),
    pytest.param({"name": "no trigger", "actions": [{"type": "resolve"}]}, id="no trigger"),
    pytest.param(rule(trigger={"type": "regex", "pattern": r"(\w+)\s\1"}), id="backreference"),
    pytest.param(rule(trigger={"type": "regex", "pattern": r"price(?! list)"}), id="lookaround"),
    pytest.param(rule(trigger={"type": "regex", "pattern": "a" * 201}), id="pattern too long"),
    pytest.param(rule(actions=[{"type": "reply", "message": {"type": "text", "text": {"body": ""}}}]),
                 id="reply the send API refuses"),
    pytest.param(rule(actions=[{"type": "assign", "agent_id": "ann"}]), id="agent id not a user id"),
])
async def test_invalid_rules_are_refused(api: httpx.AsyncClient, business_factory: BusinessFactory,
                                         body: dict[str, Any]) -> None:
    tenant = await business_factory("automations validation")
    response = await api.post("/v1/automations", headers=tenant.auth, json=body)
    assert response.status_code == 422, response.text
    assert await names(api, tenant.auth) == []


@ASYNC
async def test_bad_updates_are_refused(api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("automations bad updates")
    created = await create(api, tenant.auth, rule())
    url = f"/v1/automations/{created['id']}"
    assert (await api.put(url, headers=tenant.auth, json=rule(trigger={"type": "regex", "pattern": "[a-"}))
            ).status_code == 422
    assert (await api.patch(url, headers=tenant.auth, json={"enabled": "yes"})).status_code == 422
    assert (await api.patch(url, headers=tenant.auth, json={"enabled": True, "name": "x"})).status_code == 422
    assert (await api.get("/v1/automations/not-a-uuid", headers=tenant.auth)).status_code == 422
    assert (await api.get(url, headers=tenant.auth)).json() == created


@ASYNC
async def test_the_order_is_set_as_a_whole(api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("automations order"), await business_factory("automations order 2")
    ids = [(await create(api, tenant.auth, rule(name)))["id"] for name in ("a", "b", "c")]
    foreign = (await create(api, other.auth, rule("theirs")))["id"]

    reordered = await api.put("/v1/automations/order", headers=tenant.auth, json={"ids": [ids[2], ids[0], ids[1]]})
    assert reordered.status_code == 200, reordered.text
    assert [(r["name"], r["position"]) for r in reordered.json()] == [("c", 0), ("a", 1), ("b", 2)]
    assert await names(api, tenant.auth) == ["c", "a", "b"]

    for wrong in ([ids[0], ids[1]], [*ids, ids[0]], [ids[0], ids[1], foreign], [*ids, foreign],
                  [ids[0], ids[1], str(uuid.uuid4())], []):
        refused = await api.put("/v1/automations/order", headers=tenant.auth, json={"ids": wrong})
        assert refused.status_code == 422, (wrong, refused.text)
    assert await names(api, tenant.auth) == ["c", "a", "b"]
    assert await names(api, other.auth) == ["theirs"]

    # The list is paged in the order the rules run, a cursor from one page to the next.
    first = await api.get("/v1/automations", headers=tenant.auth, params={"limit": 2})
    assert first.status_code == 200, first.text
    assert [r["name"] for r in first.json()["items"]] == ["c", "a"] and first.json()["next_cursor"]
    rest = await api.get("/v1/automations", headers=tenant.auth,
                         params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert [r["name"] for r in rest.json()["items"]] == ["b"] and rest.json()["next_cursor"] is None
    for cursor in ("nonsense", "WyIyMDI2LTEyLTAxVDA5OjE0OjAzKzAwOjAwIiwgIjBiOWY2YzFlIl0=", "WzAsICJ4Il0="):
        refused = await api.get("/v1/automations", headers=tenant.auth, params={"cursor": cursor})
        assert refused.status_code == 422, (cursor, refused.text)  # garbage, a time cursor, an id not a UUID
    assert (await api.get("/v1/automations", headers=tenant.auth, params={"limit": 201})).status_code == 422


@ASYNC
async def test_agents_may_not_manage_rules(api: httpx.AsyncClient, db: AsyncEngine,
                                           business_factory: BusinessFactory) -> None:
    tenant = await business_factory("automations roles")
    agent, admin = await person(api, db, tenant.tenant_id), await person(api, db, tenant.tenant_id, "admin")
    created = await create(api, admin.auth, rule("by a signed-in admin"))
    url = f"/v1/automations/{created['id']}"
    for method, path, body in (("GET", "/v1/automations", None), ("POST", "/v1/automations", rule()),
                               ("PUT", "/v1/automations/order", {"ids": [created["id"]]}), ("GET", url, None),
                               ("PUT", url, rule()), ("PATCH", url, {"enabled": False}), ("DELETE", url, None),
                               ("GET", f"{url}/executions", None)):
        answer = await api.request(method, path, headers=agent.auth, json=body)
        assert answer.status_code == 403, (method, path, answer.status_code)
    assert (await api.get(url, headers=tenant.auth)).json() == created


@ASYNC
async def test_another_tenants_rule_is_not_found(api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    mine, theirs = await business_factory("automations a"), await business_factory("automations b")
    created = await create(api, theirs.auth, rule("private"))
    url = f"/v1/automations/{created['id']}"
    for method, path, body in (("GET", url, None), ("PUT", url, rule("hijacked")),
                               ("PATCH", url, {"enabled": False}), ("DELETE", url, None),
                               ("GET", f"{url}/executions", None)):
        answer = await api.request(method, path, headers=mine.auth, json=body)
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert (await api.get(url, headers=theirs.auth)).json() == created
    assert await names(api, mine.auth) == []


@ASYNC
async def test_every_change_bumps_the_config_version(api: httpx.AsyncClient, settings: CoreSettings,
                                                     business_factory: BusinessFactory) -> None:
    tenant = await business_factory("automations version")
    start = await config_version(settings, tenant.tenant_id)
    created = await create(api, tenant.auth, rule())
    assert await config_version(settings, tenant.tenant_id) == start + 1
    url = f"/v1/automations/{created['id']}"
    await api.put(url, headers=tenant.auth, json=rule("renamed"))
    await api.patch(url, headers=tenant.auth, json={"enabled": False})
    await api.put("/v1/automations/order", headers=tenant.auth, json={"ids": [created["id"]]})
    assert await config_version(settings, tenant.tenant_id) == start + 4
    # Refused and read-only requests change nothing.
    await api.post("/v1/automations", headers=tenant.auth, json=rule(trigger={"type": "regex", "pattern": "("}))
    await api.get("/v1/automations", headers=tenant.auth)
    assert await config_version(settings, tenant.tenant_id) == start + 4
    await api.delete(url, headers=tenant.auth)
    assert await config_version(settings, tenant.tenant_id) == start + 5


@ASYNC
async def test_executions_are_listed_newest_first(api: httpx.AsyncClient, db: AsyncEngine,
                                                  business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("executions"), await business_factory("executions other")
    created = await create(api, tenant.auth, rule())
    now = datetime.now(UTC)
    async with db.begin() as conn:  # as the projector writes them
        for i, (tenant_id, minutes) in enumerate(((tenant.tenant_id, 3), (tenant.tenant_id, 1),
                                                  (tenant.tenant_id, 2), (other.tenant_id, 0))):
            await conn.execute(insert(rule_executions).values(
                event_id=f"test-{uuid.uuid4()}", tenant_id=tenant_id, rule_id=created["id"], rule_name="greeting",
                conversation_key=f"{tenant.phone_number_id}:1555000{i}", trigger_event=f"wamid.{i}",
                actions=[{"type": "add_tag", "tag": "t"}], stopped=False, executed_at=now - timedelta(minutes=minutes)))
    url = f"/v1/automations/{created['id']}/executions"
    listed = await api.get(url, headers=tenant.auth)
    assert listed.status_code == 200, listed.text
    assert [e["trigger_event"] for e in listed.json()["items"]] == ["wamid.1", "wamid.2", "wamid.0"]
    assert listed.json()["items"][0]["actions"] == [{"type": "add_tag", "tag": "t"}]
    assert listed.json()["next_cursor"] is None
    first = (await api.get(f"{url}?limit=2", headers=tenant.auth)).json()
    assert [e["trigger_event"] for e in first["items"]] == ["wamid.1", "wamid.2"]
    rest = (await api.get(url, headers=tenant.auth, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [e["trigger_event"] for e in rest["items"]] == ["wamid.0"] and rest["next_cursor"] is None
    assert (await api.get(f"{url}?limit=0", headers=tenant.auth)).status_code == 422


@ASYNC
async def test_a_saved_rule_runs_on_the_next_message(api: httpx.AsyncClient, sim: httpx.AsyncClient,
                                                     db: AsyncEngine, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("automations live")
    created = await create(api, tenant.auth, rule("tag pricing", trigger={"type": "keyword", "keywords": ["price"]},
                                                  actions=[{"type": "add_tag", "tag": "pricing"}]))
    await customer_writes(sim, db, tenant, "16505550101", text="what is the price?")
    url = f"/v1/automations/{created['id']}/executions"

    async def ran() -> list[dict[str, Any]]:
        return list((await api.get(url, headers=tenant.auth)).json()["items"])

    executions = await wait_for(ran, what="the rule's execution to be recorded")
    assert executions[0]["conversation_key"] == tenant.conversation("16505550101")
    assert executions[0]["actions"] == [{"type": "add_tag", "tag": "pricing"}]


def field_of(response: httpx.Response) -> list[str]:
    """The fields a 422 names."""
    assert response.status_code == 422, response.text
    return [".".join(map(str, e["loc"])) for e in response.json()["detail"]]


@ASYNC
async def test_refusals_name_the_field(api: httpx.AsyncClient, db: AsyncEngine,
                                       business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("automations fields"), await business_factory("automations fields 2")
    outsider = await person(api, db, other.tenant_id)
    redirect = rule(actions=[{"type": "reply", "message": {"type": "text", "text": {"body": "Hi"},
                                                           "to": "16505550199"}}])
    refused = await api.post("/v1/automations", headers=tenant.auth, json=redirect)
    assert field_of(refused) == ["body.actions.0.reply.message"]
    assert "cannot set 'to'" in refused.json()["detail"][0]["msg"]

    nowhere = rule(conditions=[{"type": "time_window", "start": "09:00", "end": "17:00", "timezone": "Nope/Nope"}])
    refused = await api.post("/v1/automations", headers=tenant.auth, json=nowhere)
    assert field_of(refused) == ["body.conditions.0.time_window.timezone"]
    assert "unknown time zone" in refused.json()["detail"][0]["msg"]

    lookahead = rule(trigger={"type": "regex", "pattern": "foo(?=bar)"})
    refused = await api.post("/v1/automations", headers=tenant.auth, json=lookahead)
    assert field_of(refused) == ["body.trigger.regex.pattern"] and "RE2" in refused.json()["detail"][0]["msg"]

    stranger = rule(actions=[{"type": "assign", "agent_id": outsider.user_id}])  # another tenant's user
    assert field_of(await api.post("/v1/automations", headers=tenant.auth, json=stranger)) == [
        "body.actions.0.assign.agent_id"]
    created = await create(api, tenant.auth, rule())
    replaced = await api.put(f"/v1/automations/{created['id']}", headers=tenant.auth, json=stranger)
    assert field_of(replaced) == ["body.actions.0.assign.agent_id"]
    assert await names(api, tenant.auth) == ["greeting"]
    assert (await api.get(f"/v1/automations/{created['id']}", headers=tenant.auth)).json() == created

    hours = await api.put("/v1/settings/business-hours", headers=tenant.auth, json={"timezone": "Nope/Nope"})
    assert field_of(hours) == ["body.timezone"]


@ASYNC
async def test_a_stored_rule_cannot_redirect_a_message(api: httpx.AsyncClient, sim: httpx.AsyncClient,
                                                       db: AsyncEngine, settings: CoreSettings,
                                                       business_factory: BusinessFactory) -> None:
    """A rule written before replies were checked (straight into PostgreSQL) whose reply names another
    recipient: it is shown as unreadable, never runs, and the rules after it still answer the customer."""
    tenant = await business_factory("automations redirect")
    customer, victim = fresh_id(), fresh_id()
    leak = {"type": "reply", "message": {"type": "text", "text": {"body": "leaked"}, "to": victim,
                                         "recipient_type": "individual"}}
    hello = {"type": "keyword", "keywords": ["hello"]}
    bad_id = str(uuid.uuid4())
    async with db.begin() as conn:
        await conn.execute(insert(automation_rules).values(
            id=bad_id, tenant_id=tenant.tenant_id, name="redirect", position=0, trigger=hello, conditions=[],
            actions=[leak]))
    redis = redis_client(settings)
    try:
        await bump_config_version(redis, tenant.tenant_id)
    finally:
        await redis.aclose()
    await create(api, tenant.auth, rule("answer"))  # after it: "Hi there"

    shown = (await api.get(f"/v1/automations/{bad_id}", headers=tenant.auth)).json()
    assert shown["name"] == "redirect" and "cannot set 'recipient_type', 'to'" in shown["problem"]

    await customer_writes(sim, db, tenant, customer, text="hello")

    async def sends() -> list[dict[str, Any]] | None:
        answer = await sim.get("/_sim/requests", params={"phone_number_id": tenant.phone_number_id})
        found = [r for r in answer.json()["data"] if r["path"].endswith("/messages")]
        return found if any(r["body"].get("text", {}).get("body") == "Hi there" for r in found) else None

    requests = await wait_for(sends, what="the second rule's reply to reach Meta")
    assert [(r["recipient"], r["body"]["to"], r["body"]["text"]["body"]) for r in requests] == [
        (customer, customer, "Hi there")]
