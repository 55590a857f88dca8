"""Tenant isolation and authentication, generated from the ingress's own route table.

Every route is called without credentials (only the allow-listed public ones may answer), and
with tenant A's credentials on tenant B's objects (403 or 404 for each); every collection A can
read is searched for B's identifiers. A new route without an object of B to aim at fails the test
until the mapping below learns about it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from aerostic.web import create_app
from config.settings import IngressSettings
from templates.registry import template_id
from tenants.users import create_user
from tests.integration.helpers import Business, BusinessFactory, customer_writes

ASYNC = pytest.mark.asyncio(loop_scope="session")

# Reachable without a tenant credential: the login page and endpoint, the OAuth callback (its state
# authenticates it), health. The webhook is served before FastAPI and checks Meta's signature.
PUBLIC = {("GET", "/healthz"), ("POST", "/v1/auth/login"), ("GET", "/meta/callback"), ("GET", "/console/login"),
          ("POST", "/console/login")}
PLATFORM = re.compile(r"^/admin/")
# Streams that never end: not read as a collection here; test_live_feed checks a tenant sees only its own events.
STREAMS = {("GET", "/v1/live")}
CANNED = "B's canned reply text"


@dataclass(frozen=True)
class Route:
    method: str
    path: str

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::\w+)?}", self.path)

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], self.path)


def routes() -> list[Route]:
    """Every (method, path) the ingress's FastAPI app serves, included routers too (docs excluded)."""
    app = create_app(IngressSettings(environment="test")).api
    found: list[Route] = []

    def walk(items: list[Any], prefix: str) -> None:
        for item in items:
            included = getattr(item, "original_router", None)
            if included is not None:
                walk(list(included.routes), prefix + item.include_context.prefix)
            elif getattr(item, "methods", None):
                found.extend(Route(m, prefix + item.path) for m in sorted(item.methods) if m != "HEAD")

    walk(list(app.routes), "")
    return [r for r in found if not r.path.startswith(("/docs", "/redoc", "/openapi"))]


def test_the_route_table_is_found() -> None:
    found = {(r.method, r.path) for r in routes()}
    assert {("POST", "/v1/messages"), ("GET", "/v1/messages/{message_id}"), ("DELETE", "/v1/api-keys/{key_id}"),
            ("GET", "/whatsapp/embedded/start"), ("GET", "/meta/callback"), ("GET", "/console")} <= found


@ASYNC
async def test_no_route_is_reachable_without_authentication(api: httpx.AsyncClient) -> None:
    dummy = {name: "00000000-0000-0000-0000-000000000000" for r in routes() for name in r.params}
    open_routes = []
    for route in routes():
        answer = await api.request(route.method, route.url(dummy), json={} if route.method != "GET" else None)
        refused = answer.status_code == 401 or (
            answer.status_code in (302, 303) and answer.headers["location"].startswith("/console/login"))
        if not refused and (route.method, route.path) not in PUBLIC:
            open_routes.append((route.method, route.path, answer.status_code))
    assert open_routes == []


@ASYNC
async def test_the_platform_api_refuses_tenant_credentials(api: httpx.AsyncClient,
                                                            business_factory: BusinessFactory) -> None:
    tenant = await business_factory("platform probe")
    for route in (r for r in routes() if PLATFORM.match(r.path)):
        answer = await api.request(route.method, route.path, headers=tenant.auth, json={})
        assert answer.status_code == 401, (route, answer.status_code)


@dataclass
class Victim:
    business: Business
    objects: dict[str, str]
    identifiers: list[str]


RULE = {"name": "B's private rule", "trigger": {"type": "keyword", "keywords": ["refund"]},
        "actions": [{"type": "add_tag", "tag": "refunds"}]}
ENTRY = {"question": "B's private question?", "answer": "B's private answer", "keywords": []}
WEBHOOK = {"url": "http://127.0.0.1:9/b-private-hook", "description": "B's private webhook", "events": ["*"]}
WEBHOOK_RANGE = {"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}
CONTACT, SEGMENT, IMPORT = "B's contact Yan", "B's segment", "b-contacts.csv"
MEDIA = "b-private-invoice.pdf"
CAMPAIGN, CAMPAIGN_TEMPLATE = "B's private campaign", "b_private_offer"
TEMPLATE = {"name": "b_private_template", "language": "en_US", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "B's private template"}]}


def body_for(route: Route, objects: dict[str, str]) -> dict[str, Any] | None:
    """A valid body for ``route``, so that A's request is refused for B's object, not for its body."""
    if route.method == "GET":
        return None
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("PUT", "/v1/automations/{rule_id}"): RULE,
        ("PATCH", "/v1/automations/{rule_id}"): {"enabled": False},
        ("PUT", "/v1/knowledge/{entry_id}"): ENTRY,
        ("PUT", "/v1/agents/{user_id}"): {"capacity": 1, "teams": []},
        ("POST", "/v1/conversations/{key}/reply"): {"message": {"type": "text", "text": {"body": "A's reply"}}},
        ("POST", "/v1/conversations/{key}/notes"): {"text": "A's note"},
        ("POST", "/v1/conversations/{key}/assign"): {"agent_id": objects["user_id"]},
        ("POST", "/v1/conversations/{key}/transfer"): {"agent_id": objects["user_id"]},
        ("PATCH", "/v1/webhooks/{endpoint_id}"): {"enabled": False},
        ("POST", "/v1/webhooks/{endpoint_id}/redeliver"): WEBHOOK_RANGE,
        ("PATCH", "/v1/contacts/{contact_id}"): {"add_tags": ["A's tag"]},
        ("PUT", "/v1/segments/{segment_id}"): {"name": "A's segment", "filter": {}},
        ("POST", "/v1/campaigns/{campaign_id}/test"): {"to": ["+16505550780"]},
        ("PUT", "/v1/campaigns/{campaign_id}"): {
            "name": "A's campaign", "template": {"name": CAMPAIGN_TEMPLATE, "language": "en_US"},
            "audience": {"kind": "csv", "csv": "phone\n+16505550781\n"}},
        ("PUT", "/v1/canned-responses/{response_id}"): {"shortcut": "mine", "text": "A's text"},
    }
    return bodies.get((route.method, route.path), {})


@pytest.fixture(scope="module")
async def tenants(api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
                  business_factory: BusinessFactory) -> tuple[Business, Victim]:
    a, b = await business_factory("tenant A"), await business_factory("tenant B")
    customer = "16505550777"
    await customer_writes(sim, db, b, customer, text="B's private message")
    sent = await api.post("/v1/messages", headers=b.auth, json={"to": customer, "type": "text",
                                                               "text": {"body": "B's reply"}})
    assert sent.status_code == 202, sent.text
    keys = (await api.get("/v1/api-keys", headers=b.auth)).json()["items"]
    async with db.begin() as conn:
        user = await create_user(conn, tenant_id=b.tenant_id, email=f"agent-{b.tenant_id}@b.test",
                                 password="tenant B's password", role="agent")
    rule = await api.post("/v1/automations", headers=b.auth, json=RULE)
    entry = await api.post("/v1/knowledge", headers=b.auth, json=ENTRY)
    agent = await api.put(f"/v1/agents/{user.user_id}", headers=b.auth,
                          json={"display_name": "B's agent Zed", "capacity": 2, "teams": ["B's team"]})
    note = await api.post(f"/v1/conversations/{b.conversation(customer)}/notes", headers=b.auth,
                          json={"text": "B's private note"})
    hook = await api.post("/v1/webhooks", headers=b.auth, json=WEBHOOK)
    contact = await api.post("/v1/contacts", headers=b.auth, json={"phone": "+16505550778", "name": CONTACT})
    segment = await api.post("/v1/segments", headers=b.auth, json={"name": SEGMENT, "filter": {}})
    imported = await api.post("/v1/contacts/imports", headers={**b.auth, "content-type": "text/csv"},
                              params={"filename": IMPORT}, content=b"phone\n16505550779\n")
    media = await api.post("/v1/media", headers=b.auth, files={"file": (MEDIA, b"%PDF-1.4 B's", "application/pdf")})
    canned = await api.post("/v1/canned-responses", headers=b.auth, json={"shortcut": "bsecret", "text": CANNED})
    assert [r.status_code for r in (rule, entry, agent, note, hook, contact, segment, imported, media, canned)] == [
        201, 201, 200, 201, 201, 201, 201, 202, 201, 201]
    template = await api.post("/v1/templates", headers=b.auth, json=TEMPLATE)
    assert template.status_code == 202, template.text
    async with db.begin() as conn:  # an approved template in B's registry, as a sync would leave it
        await conn.execute(text(
            "INSERT INTO message_templates (id, tenant_id, waba_id, name, language, category, status, "
            "parameter_format, components, status_at) VALUES (:id, :t, :w, :n, 'en_US', 'MARKETING', 'APPROVED', "
            "'positional', CAST(:comp AS jsonb), now())"), {
                "id": template_id(b.tenant_id, b.waba_id, CAMPAIGN_TEMPLATE, "en_US"), "t": b.tenant_id,
                "w": b.waba_id, "n": CAMPAIGN_TEMPLATE, "comp": json.dumps([{"type": "BODY", "text": "B's offer"}])})
    campaign = await api.post("/v1/campaigns", headers=b.auth, json={
        "name": CAMPAIGN, "template": {"name": CAMPAIGN_TEMPLATE, "language": "en_US"},
        "audience": {"kind": "segment", "segment_id": segment.json()["id"]}})
    assert campaign.status_code == 201, campaign.text
    redelivery = await api.post(f"/v1/webhooks/{hook.json()['id']}/redeliver", headers=b.auth, json=WEBHOOK_RANGE)
    assert redelivery.status_code == 202, redelivery.text
    objects = {"message_id": sent.json()["id"], "key": b.conversation(customer), "key_id": keys[0]["id"],
               "user_id": user.user_id, "rule_id": rule.json()["id"], "entry_id": entry.json()["id"],
               "endpoint_id": hook.json()["id"], "request_id": redelivery.json()["id"],
               "contact_id": contact.json()["id"], "segment_id": segment.json()["id"],
               "import_id": imported.json()["id"], "media_id": media.json()["id"],
               "template_id": template.json()["id"], "name": TEMPLATE["name"], "campaign_id": campaign.json()["id"],
               "response_id": canned.json()["id"]}
    identifiers = [b.tenant_id, b.phone_number_id, b.waba_id, keys[0]["prefix"], sent.json()["id"], user.email,
                   user.user_id, "B's private message", "B's reply", RULE["name"], ENTRY["question"],
                   "B's agent Zed", "B's team", "B's private note", WEBHOOK["url"], WEBHOOK["description"],
                   CONTACT, SEGMENT, IMPORT, MEDIA, TEMPLATE["name"], CAMPAIGN, CAMPAIGN_TEMPLATE, CANNED]
    return a, Victim(b, objects, identifiers)


@ASYNC
async def test_a_tenant_gets_403_or_404_on_every_object_of_another(
        api: httpx.AsyncClient, tenants: tuple[Business, Victim]) -> None:
    a, victim = tenants
    aimed = [r for r in routes() if r.params and not PLATFORM.match(r.path)]
    assert aimed, "no route takes an object id"
    unknown = sorted({p for r in aimed for p in r.params} - set(victim.objects))
    assert unknown == [], f"routes take ids this test has no object of tenant B for: {unknown}"
    leaks = []
    for route in aimed:
        url = route.url(victim.objects)
        answer = await api.request(route.method, url, headers=a.auth, json=body_for(route, victim.objects))
        # A console page answers an API key with the sign-in form (it takes the session cookie only); its data
        # comes from the /v1 routes checked here.
        to_login = route.path.startswith("/console/") and answer.status_code == 303 \
            and answer.headers.get("location") == "/console/login"
        if answer.status_code not in (403, 404) and not to_login:
            leaks.append((route.method, url, answer.status_code))
    assert leaks == []
    # ... while B itself reaches them (the ids are real).
    objects = victim.objects
    for path in (f"/v1/messages/{objects['message_id']}", f"/v1/automations/{objects['rule_id']}",
                 f"/v1/knowledge/{objects['entry_id']}", f"/v1/conversations/{objects['key']}",
                 f"/v1/conversations/{objects['key']}/notes"):
        own = await api.get(path, headers=victim.business.auth)
        assert own.status_code == 200, (path, own.status_code)


@ASYNC
async def test_collections_never_show_another_tenants_data(
        api: httpx.AsyncClient, tenants: tuple[Business, Victim]) -> None:
    a, victim = tenants
    listed = [r for r in routes() if r.method == "GET" and not r.params and not PLATFORM.match(r.path)
              and (r.method, r.path) not in PUBLIC | STREAMS and not r.path.startswith("/whatsapp/embedded")]
    assert any(r.path == "/v1/api-keys" for r in listed)
    leaks = []
    for route in listed:
        answer = await api.get(route.path, headers=a.auth)
        for identifier in victim.identifiers:
            if identifier in answer.text:
                leaks.append((route.path, identifier))
    assert leaks == []


@ASYNC
async def test_sending_from_another_tenants_number_is_refused(
        api: httpx.AsyncClient, tenants: tuple[Business, Victim]) -> None:
    a, victim = tenants
    answer = await api.post("/v1/messages", headers=a.auth, json={
        "from": victim.business.phone_number_id, "to": "16505550777", "type": "text", "text": {"body": "x"}})
    assert answer.status_code in (403, 404, 422), answer.text
