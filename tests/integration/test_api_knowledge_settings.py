"""``/v1/knowledge`` and ``/v1/settings`` over HTTP against the real ingress, PostgreSQL and Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import CoreSettings
from tests.integration.helpers import BusinessFactory, scalar
from tests.integration.people import config_version, person

ASYNC = pytest.mark.asyncio(loop_scope="session")


def entry(question: str = "What are your opening hours?", **extra: Any) -> dict[str, Any]:
    return {"question": question, "answer": "Monday to Friday, 9 to 5.", "keywords": ["open", "hours"], **extra}


HOURS = {"timezone": "Europe/Paris", "hours": {"mon": [["09:00", "12:30"], ["14:00", "18:00"]],
                                               "sat": [["10:00", "13:00"]]}}


@ASYNC
async def test_knowledge_entries_are_created_read_replaced_and_deleted(
        api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("knowledge crud")
    created = await api.post("/v1/knowledge", headers=tenant.auth,
                             json=entry("  Do you ship abroad?  ", keywords=["ship", " Ship ", "abroad"]))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["question"] == "Do you ship abroad?" and body["keywords"] == ["ship", "abroad"]
    second = (await api.post("/v1/knowledge", headers=tenant.auth, json=entry(keywords=[]))).json()
    listed = await api.get("/v1/knowledge", headers=tenant.auth)
    assert [e["id"] for e in listed.json()["items"]] == [body["id"], second["id"]]  # oldest first

    url = f"/v1/knowledge/{body['id']}"
    assert (await api.get(url, headers=tenant.auth)).json() == body
    replaced = await api.put(url, headers=tenant.auth, json={"question": "Do you ship to Canada?",
                                                             "answer": "Yes, in 5 days."})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["keywords"] == [] and replaced.json()["answer"] == "Yes, in 5 days."
    assert replaced.json()["created_at"] == body["created_at"]
    assert (await api.delete(url, headers=tenant.auth)).status_code == 204
    assert (await api.get(url, headers=tenant.auth)).status_code == 404
    assert (await api.delete(url, headers=tenant.auth)).status_code == 404
    assert [e["id"] for e in (await api.get("/v1/knowledge", headers=tenant.auth)).json()["items"]] == [
        second["id"]]


@ASYNC
@pytest.mark.parametrize("body", [
    pytest.param(entry(question=""), id="empty question"),
    pytest.param(entry(question="   "), id="blank question"),
    pytest.param(entry(question="q" * 501), id="long question"),
    pytest.param(entry(answer="a" * 4001), id="long answer"),
    pytest.param(entry(keywords=["k"] * 31), id="too many keywords"),
    pytest.param(entry(keywords=["k" * 101]), id="long keyword"),
    pytest.param(entry(keywords=[""]), id="empty keyword"),
    pytest.param(entry(keywords="open"), id="keywords not a list"),
    pytest.param(entry(tags=["x"]), id="unknown field"),
    pytest.param({"question": "no answer?"}, id="no answer"),
])
async def test_invalid_entries_are_refused(api: httpx.AsyncClient, business_factory: BusinessFactory,
                                           body: dict[str, Any]) -> None:
    tenant = await business_factory("knowledge validation")
    assert (await api.post("/v1/knowledge", headers=tenant.auth, json=body)).status_code == 422
    assert (await api.get("/v1/knowledge", headers=tenant.auth)).json()["items"] == []


@ASYNC
async def test_agents_read_but_do_not_edit_the_knowledge_base(api: httpx.AsyncClient, db: AsyncEngine,
                                                              business_factory: BusinessFactory) -> None:
    tenant = await business_factory("knowledge roles")
    agent, admin = await person(api, db, tenant.tenant_id), await person(api, db, tenant.tenant_id, "admin")
    created = await api.post("/v1/knowledge", headers=admin.auth, json=entry())
    assert created.status_code == 201, created.text
    url = f"/v1/knowledge/{created.json()['id']}"
    assert (await api.get("/v1/knowledge", headers=agent.auth)).json()["items"] == [created.json()]
    assert (await api.get(url, headers=agent.auth)).json() == created.json()
    assert (await api.post("/v1/knowledge", headers=agent.auth, json=entry())).status_code == 403
    assert (await api.put(url, headers=agent.auth, json=entry("changed?"))).status_code == 403
    assert (await api.delete(url, headers=agent.auth)).status_code == 403
    assert (await api.get(url, headers=agent.auth)).json() == created.json()


@ASYNC
async def test_another_tenants_entry_is_not_found(api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    mine, theirs = await business_factory("knowledge a"), await business_factory("knowledge b")
    created = (await api.post("/v1/knowledge", headers=theirs.auth, json=entry("B's secret question"))).json()
    url = f"/v1/knowledge/{created['id']}"
    for method, body in (("GET", None), ("PUT", entry()), ("DELETE", None)):
        assert (await api.request(method, url, headers=mine.auth, json=body)).status_code == 404
    assert (await api.get("/v1/knowledge", headers=mine.auth)).json()["items"] == []
    assert (await api.get(url, headers=theirs.auth)).json() == created


@ASYNC
async def test_knowledge_changes_bump_the_config_version(api: httpx.AsyncClient, settings: CoreSettings,
                                                         business_factory: BusinessFactory) -> None:
    tenant = await business_factory("knowledge version")
    start = await config_version(settings, tenant.tenant_id)
    created = (await api.post("/v1/knowledge", headers=tenant.auth, json=entry())).json()
    await api.put(f"/v1/knowledge/{created['id']}", headers=tenant.auth, json=entry("Changed?"))
    await api.post("/v1/knowledge", headers=tenant.auth, json=entry(question=""))  # refused: no change
    assert await config_version(settings, tenant.tenant_id) == start + 2
    await api.delete(f"/v1/knowledge/{created['id']}", headers=tenant.auth)
    assert await config_version(settings, tenant.tenant_id) == start + 3


@ASYNC
async def test_ai_settings_default_then_change(api: httpx.AsyncClient, db: AsyncEngine, settings: CoreSettings,
                                               business_factory: BusinessFactory) -> None:
    tenant = await business_factory("ai settings")
    agent = await person(api, db, tenant.tenant_id)
    assert (await api.get("/v1/settings/ai", headers=agent.auth)).json() == {"provider": "offline", "threshold": 0.7}
    start = await config_version(settings, tenant.tenant_id)
    changed = await api.put("/v1/settings/ai", headers=tenant.auth, json={"provider": "openai", "threshold": 0.85})
    assert changed.status_code == 200, changed.text
    assert (await api.get("/v1/settings/ai", headers=agent.auth)).json() == {"provider": "openai", "threshold": 0.85}
    assert await config_version(settings, tenant.tenant_id) == start + 1
    for bad in ({"provider": "gpt", "threshold": 0.5}, {"provider": "off", "threshold": 1.5},
                {"provider": "off", "threshold": -0.1}, {"provider": "off", "threshold": 0.5, "model": "x"}):
        assert (await api.put("/v1/settings/ai", headers=tenant.auth, json=bad)).status_code == 422, bad
    assert (await api.put("/v1/settings/ai", headers=agent.auth,
                          json={"provider": "off", "threshold": 0.5})).status_code == 403
    assert (await api.get("/v1/settings/ai", headers=tenant.auth)).json() == {"provider": "openai", "threshold": 0.85}
    assert await config_version(settings, tenant.tenant_id) == start + 1


@ASYNC
async def test_business_hours_default_then_change(api: httpx.AsyncClient, db: AsyncEngine, settings: CoreSettings,
                                                  business_factory: BusinessFactory) -> None:
    tenant = await business_factory("business hours")
    agent = await person(api, db, tenant.tenant_id)
    assert (await api.get("/v1/settings/business-hours", headers=agent.auth)).json() == {"timezone": "UTC",
                                                                                         "hours": {}}
    await api.put("/v1/settings/ai", headers=tenant.auth, json={"provider": "off", "threshold": 0.6})
    start = await config_version(settings, tenant.tenant_id)
    saved = await api.put("/v1/settings/business-hours", headers=tenant.auth, json=HOURS)
    assert saved.status_code == 200, saved.text
    assert (await api.get("/v1/settings/business-hours", headers=agent.auth)).json() == HOURS
    assert await config_version(settings, tenant.tenant_id) == start + 1
    # One row holds both: neither change resets the other.
    assert (await api.get("/v1/settings/ai", headers=tenant.auth)).json() == {"provider": "off", "threshold": 0.6}
    assert await scalar(db, "SELECT timezone FROM tenant_settings WHERE tenant_id = :t",
                        t=tenant.tenant_id) == "Europe/Paris"
    for bad in ({"timezone": "Mars/Olympus_Mons", "hours": {}}, {"timezone": "UTC", "hours": {"mon": [["25:00",
                "26:00"]]}}, {"timezone": "UTC", "hours": {"someday": [["09:00", "10:00"]]}},
                {"timezone": "UTC", "hours": {"mon": [["09:00"]]}}):
        answer = await api.put("/v1/settings/business-hours", headers=tenant.auth, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
    assert (await api.put("/v1/settings/business-hours", headers=agent.auth, json=HOURS)).status_code == 403
    assert await config_version(settings, tenant.tenant_id) == start + 1
    assert (await api.get("/v1/settings/business-hours", headers=tenant.auth)).json() == HOURS


@ASYNC
async def test_settings_are_per_tenant(api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    mine, theirs = await business_factory("settings a"), await business_factory("settings b")
    await api.put("/v1/settings/ai", headers=theirs.auth, json={"provider": "off", "threshold": 0.9})
    await api.put("/v1/settings/business-hours", headers=theirs.auth, json=HOURS)
    assert (await api.get("/v1/settings/ai", headers=mine.auth)).json() == {"provider": "offline", "threshold": 0.7}
    assert (await api.get("/v1/settings/business-hours", headers=mine.auth)).json() == {"timezone": "UTC",
                                                                                        "hours": {}}
