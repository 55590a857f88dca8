"""Templates end to end: the API, the dispatcher (the only Meta caller), the simulator's review and webhooks
through the ingress, the router and the projector into the registry, and the pre-send checks.

Every test has a tenant (and WABA) of its own; the simulator approves a new template after its review delay.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from schemas.catalogue import OUTBOUND_INTERACTIVE
from schemas.outbound import OutboundRequest
from stack.signup_driver import approve
from tests.integration.helpers import (
    AdminFactory,
    Business,
    BusinessFactory,
    MetaAccountFactory,
    Poster,
    fresh_id,
    scalar,
    settled_connection,
    wait_for,
)
from tests.unit._vectors import WEBHOOKS, load

pytestmark = pytest.mark.usefixtures("pipeline_ready")

BODY = "Hi {{1}}, your order {{2}} has shipped."


def _new_template(name: str) -> dict[str, Any]:
    return {"name": name, "language": "en_US", "category": "UTILITY", "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order update"},
        {"type": "BODY", "text": BODY, "example": {"body_text": [["Ann", "860198"]]}},
        {"type": "FOOTER", "text": "Aerostic test shop"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}]}]}


def _send(name: str, *values: Any, to: str) -> dict[str, Any]:
    parameters = [v if isinstance(v, dict) else {"type": "text", "text": v} for v in values]
    return {"to": to, "type": "template", "template": {
        "name": name, "language": {"code": "en_US"}, "components": [{"type": "body", "parameters": parameters}]}}


def _customer() -> str:
    return f"1555{fresh_id()[:7]}"


async def _template(api: httpx.AsyncClient, business: Business, template_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/templates/{template_id}", headers=business.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _status_is(api: httpx.AsyncClient, business: Business, template_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/v1/templates/{template_id}", headers=business.auth)
        if response.status_code == 404:  # the projector has not written the creation request yet
            return None
        assert response.status_code == 200, response.text
        return dict(response.json()) if response.json()["status"] == status else None

    return dict(await wait_for(probe, timeout=60, what=f"template {template_id[:8]} to be {status}"))


async def _approved(api: httpx.AsyncClient, business: Business, name: str) -> dict[str, Any]:
    created = await api.post("/v1/templates", headers=business.auth, json=_new_template(name))
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "SUBMITTING"
    return await _status_is(api, business, created.json()["id"], "APPROVED")


async def _synced(api: httpx.AsyncClient, business: Business) -> None:
    """Sync the business's registry with Meta (a synced registry knows every template of its WABA)."""
    requested = await api.post("/v1/templates/sync", headers=business.auth)
    assert requested.status_code == 202, requested.text
    request_id = requested.json()[0]["request_id"]

    async def done() -> bool:
        syncs = (await api.get("/v1/templates/syncs", headers=business.auth)).json()
        return any(s["request_id"] == request_id and s["status"] == "done" for s in syncs)

    await wait_for(done, timeout=60, what="the registry sync")


async def _meta_saw(sim: httpx.AsyncClient, business: Business) -> list[dict[str, Any]]:
    response = await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})
    return list(response.json()["data"])


async def _message_status(api: httpx.AsyncClient, business: Business, message_id: str,
                          wanted: set[str]) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/v1/messages/{message_id}", headers=business.auth)
        body = response.json() if response.status_code == 200 else {}
        return body if body.get("status") in wanted else None

    return dict(await wait_for(probe, timeout=60, what=f"message {message_id[:8]} to be one of {sorted(wanted)}"))


async def test_a_created_template_is_approved_by_webhook_then_usable(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    business = await business_factory("templates create")
    name = f"order_update_{fresh_id()}"
    template = await _approved(api, business, name)
    assert template["meta_id"] and template["category"] == "UTILITY" and template["parameter_format"] == "positional"
    assert template["variables"] == ["body.1", "body.2", "button.0"]
    assert template["preview"].splitlines()[1] == BODY
    at_meta = {t["name"]: t for t in (await sim.get("/_sim/templates/all")).json()}
    assert at_meta[name]["id"] == template["meta_id"] and at_meta[name]["status"] == "APPROVED"
    sent = await api.post("/v1/messages", headers=business.auth, json=_send(name, "Ann", "860198", to=_customer()))
    assert sent.status_code == 202, sent.text
    message = await _message_status(api, business, sent.json()["id"], {"sent", "delivered", "read"})
    assert message["error"] is None
    listed = (await api.get("/v1/templates", headers=business.auth, params={"name": name})).json()["items"]
    assert [t["id"] for t in listed] == [template["id"]]


async def test_wrong_parameters_never_reach_meta(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        producer: AsyncProducer, settings: CoreSettings) -> None:
    business = await business_factory("templates refuse")
    name = f"order_update_{fresh_id()}"
    await _approved(api, business, name)
    await _synced(api, business)
    to = _customer()
    short = await api.post("/v1/messages", headers=business.auth, json=_send(name, "Ann", to=to))
    assert short.status_code == 422, short.text
    assert short.json()["detail"]["code"] == "template_parameter_mismatch"
    assert short.json()["detail"]["meta_code"] == 132000 and "body expects 2 parameter(s), 1 given" in short.text
    image = {"type": "image", "image": {"link": "https://shop.test/a.jpg"}}
    wrong_type = await api.post("/v1/messages", headers=business.auth, json=_send(name, "Ann", image, to=to))
    assert wrong_type.status_code == 422 and wrong_type.json()["detail"]["meta_code"] == 132012
    missing = await api.post("/v1/messages", headers=business.auth, json=_send(f"{name}_x", "Ann", "1", to=to))
    assert missing.status_code == 422 and missing.json()["detail"]["code"] == "template_not_found"
    # What the API did not send (an automation's reply, a campaign's message) meets the same check in the
    # dispatcher: it fails locally with the reason.
    message_id = str(uuid.uuid4())
    request = OutboundRequest(
        event_id=message_id, tenant_id=business.tenant_id, message_id=message_id,
        idempotency_key=f"{business.tenant_id}:{message_id}", phone_number_id=business.phone_number_id, to=to,
        message={k: v for k, v in _send(name, "Ann", to=to).items() if k != "to"}, created_at=datetime.now(UTC))
    await producer.send(OUTBOUND_INTERACTIVE.full_name(settings.topic_prefix), request.encode(),
                        request.conversation_key.encode())
    failed = await _message_status(api, business, message_id, {"failed"})
    assert failed["error"]["title"] == "template_parameter_mismatch" and failed["error"]["code"] == -6
    assert await _meta_saw(sim, business) == []  # the simulator received no send at all


async def test_sync_pulls_the_templates_meta_holds(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine) -> None:
    business = await business_factory("templates sync")
    names = [f"made_elsewhere_{fresh_id()}" for _ in range(3)]
    graph = {"Authorization": f"Bearer {business.token}"}
    for name in names:  # created in WhatsApp Manager, as far as Aerostic knows
        created = await sim.post(f"/v23.0/{business.waba_id}/message_templates", headers=graph,
                                 json={**_new_template(name), "category": "MARKETING"})
        assert created.status_code == 200, created.text
    requested = await api.post("/v1/templates/sync", headers=business.auth)
    assert requested.status_code == 202 and [r["waba_id"] for r in requested.json()] == [business.waba_id]

    async def synced() -> list[dict[str, Any]] | None:
        syncs = (await api.get("/v1/templates/syncs", headers=business.auth)).json()
        return syncs if syncs and syncs[0]["status"] == "done" and syncs[0]["templates"] == 3 else None

    await wait_for(synced, timeout=60, what="the sync to finish")
    listed = (await api.get("/v1/templates", headers=business.auth, params={"limit": 2})).json()
    rest = (await api.get("/v1/templates", headers=business.auth,
                          params={"limit": 2, "cursor": listed["next_cursor"]})).json()
    held = {t["name"]: t for t in listed["items"] + rest["items"]}
    assert set(held) == set(names) and rest["next_cursor"] is None
    assert all(t["category"] == "MARKETING" and t["components"][1]["text"] == BODY for t in held.values())
    # Other tenants see none of them.
    other = await business_factory("templates other")
    assert (await api.get("/v1/templates", headers=other.auth)).json()["items"] == []
    assert await scalar(db, "SELECT count(*) FROM message_templates WHERE tenant_id = :t",
                        t=business.tenant_id) == 3


async def test_a_paused_template_is_marked_and_its_sends_fail_locally(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    business = await business_factory("templates pause")
    name = f"order_update_{fresh_id()}"
    template = await _approved(api, business, name)
    ref = {"waba_id": business.waba_id, "name": name, "language": "en_US"}
    paused = await sim.post("/_sim/templates/status", json={**ref, "event": "PAUSED"})
    assert paused.json()["webhook_delivered"] is True
    marked = await _status_is(api, business, template["id"], "PAUSED")
    assert marked["status_reason"] == "FIRST_PAUSE"
    await wait_for(lambda: _quality_is(api, business, template["id"], "RED"), what="the quality to turn RED")
    refused = await api.post("/v1/messages", headers=business.auth, json=_send(name, "Ann", "1", to=_customer()))
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"]["code"] == "template_not_approved"
    assert refused.json()["detail"]["meta_code"] == 132015 and "PAUSED" in refused.json()["detail"]["reason"]
    assert await _meta_saw(sim, business) == []
    await sim.post("/_sim/templates/status", json={**ref, "event": "REINSTATED"})
    await _status_is(api, business, template["id"], "APPROVED")
    again = await api.post("/v1/messages", headers=business.auth, json=_send(name, "Ann", "1", to=_customer()))
    assert again.status_code == 202, again.text


async def test_metas_own_quality_and_category_webhooks_update_the_registry(
        business_factory: BusinessFactory, api: httpx.AsyncClient, post: Poster) -> None:
    """The real payloads of tests/data/meta (pywa's recorded updates), addressed to this tenant's template."""
    business = await business_factory("templates vectors")
    name = f"order_update_{fresh_id()}"
    template = await _approved(api, business, name)
    for vector in ("pywa-template-quality-update-yellow.json", "pywa-template-category-update-marketing.json"):
        body = load(WEBHOOKS / vector)
        body["entry"][0]["id"] = business.waba_id
        body["entry"][0]["time"] = int(datetime.now(UTC).timestamp())
        value = body["entry"][0]["changes"][0]["value"]
        value.update(message_template_id=int(template["meta_id"]), message_template_name=name,
                     message_template_language="en_US")
        assert (await post(body)).status_code == 200

    async def updated() -> dict[str, Any] | None:
        now = await _template(api, business, template["id"])
        return now if now["quality"] == "YELLOW" and now["category"] == "MARKETING" else None

    done = await wait_for(updated, what="the quality and category webhooks to reach the registry")
    assert done["previous_category"] == "UTILITY" and done["status"] == "APPROVED"


async def _quality_is(api: httpx.AsyncClient, business: Business, template_id: str, quality: str) -> bool:
    return (await _template(api, business, template_id))["quality"] == quality


async def test_creation_is_validated_locally_and_deletion_goes_to_meta(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    business = await business_factory("templates delete")
    name = f"order_update_{fresh_id()}"
    bad = _new_template(name)
    bad["components"][1] = {"type": "BODY", "text": "Hi {{1}} and {{3}}"}
    refused = await api.post("/v1/templates", headers=business.auth, json=bad)
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["body", "components", 1, "text"]]
    assert name not in {t["name"] for t in (await sim.get("/_sim/templates/all")).json()}
    template = await _approved(api, business, name)
    twice = await api.post("/v1/templates", headers=business.auth, json=_new_template(name))
    assert twice.status_code == 409
    deleted = await api.delete(f"/v1/templates/{name}", headers=business.auth)
    assert deleted.status_code == 202, deleted.text
    await _status_is(api, business, template["id"], "DELETED")
    assert name not in {t["name"] for t in (await sim.get("/_sim/templates/all")).json()}
    gone = await api.post("/v1/messages", headers=business.auth, json=_send(name, "Ann", "1", to=_customer()))
    assert gone.status_code == 422 and gone.json()["detail"]["code"] == "template_not_approved"


async def _edited_at_meta(api: httpx.AsyncClient, sim: httpx.AsyncClient, business: Business,
                          template: dict[str, Any], body: str) -> dict[str, Any]:
    """Edit ``template``'s body at Meta (three variables) and wait until the registry shows the new text."""
    response = await sim.post(f"/v23.0/{template['meta_id']}", headers={"Authorization": f"Bearer {business.token}"},
                              json={"components": [{"type": "BODY", "text": body,
                                                    "example": {"body_text": [["Ann", "42", "Monday"]]}}]})
    assert response.status_code == 200, response.text

    async def synced() -> dict[str, Any] | None:
        now = await _template(api, business, template["id"])
        return now if now["preview"] == body else None

    result: dict[str, Any] = await wait_for(synced, what="the edit to reach the registry")
    return result


async def test_an_edit_at_meta_is_synced_into_the_registry(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    """``message_template_components_update`` does not carry every component's shape: the registry reads the
    template again from Meta, and sends are then checked against the new components."""
    business = await business_factory("templates edit")
    name = f"order_update_{fresh_id()}"
    template = await _approved(api, business, name)
    edited = "Hello {{1}}, order {{2}} left on {{3}}."
    now = await _edited_at_meta(api, sim, business, template, edited)
    assert now["variables"] == ["body.1", "body.2", "body.3"] and now["status"] == "APPROVED"
    old = await api.post("/v1/messages", headers=business.auth, json=_send(name, "Ann", "42", to=_customer()))
    assert old.status_code == 422 and "body expects 3 parameter(s), 2 given" in old.text


async def test_an_edit_in_the_minute_of_another_sync_of_its_account_gets_a_sync_of_its_own(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, post: Poster,
        db: AsyncEngine) -> None:
    """Webhooks naming templates the registry lacks share one sync a minute per account; an edit made after that
    minute's sync must still be read from Meta (folded into it, the edit was never synced)."""
    business = await business_factory("templates edit after a sync")
    name = f"order_update_{fresh_id()}"
    template = await _approved(api, business, name)
    lacking = load(WEBHOOKS / "pywa-template-quality-update-yellow.json")
    lacking["entry"][0]["id"] = business.waba_id
    lacking["entry"][0]["time"] = int(datetime.now(UTC).timestamp())
    lacking["entry"][0]["changes"][0]["value"].update(
        message_template_id=int(template["meta_id"]) + 1, message_template_name=f"unknown_{fresh_id()}",
        message_template_language="en_US")
    assert (await post(lacking)).status_code == 200
    sql = ("SELECT request_id FROM template_syncs WHERE tenant_id = :t AND waba_id = :w AND status = 'done' "
           "AND request_id LIKE 'auto:%'")
    auto = await wait_for(lambda: scalar(db, sql, t=business.tenant_id, w=business.waba_id),
                          what="the sync a webhook naming an unknown template asks for")
    await _edited_at_meta(api, sim, business, template, "Hi {{1}}, your order {{2}} ships on {{3}}.")
    last = await scalar(db, "SELECT request_id FROM template_syncs WHERE tenant_id = :t AND waba_id = :w",
                        t=business.tenant_id, w=business.waba_id)
    assert last.startswith("edit:") and last != auto


async def test_connecting_an_account_syncs_its_templates(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    """Embedded Signup asks for the new WABA's registry at once (the template is added at Meta without any
    webhook, so only that sync can bring it)."""
    admin = await admin_factory("templates signup")
    meta = await meta_account_factory()
    name = f"welcome_{fresh_id()}"
    added = await sim.post("/_sim/templates", json={"waba_id": meta.waba_id, "name": name, "language": "en_US",
                                                    "category": "MARKETING", "parameters": {"body": 1}})
    assert added.status_code == 200, added.text
    approval = await approve(api, admin.auth, email=meta.email, password=meta.password)
    assert (await settled_connection(api, admin, approval.attempt_id or ""))["state"] == "connected"

    async def listed() -> list[dict[str, Any]]:
        return list((await api.get("/v1/templates", headers=admin.auth)).json()["items"])

    [template] = await wait_for(listed, what="the connected account's templates in the registry")
    assert (template["name"], template["status"], template["category"]) == (name, "APPROVED", "MARKETING")

    async def syncs() -> list[dict[str, Any]]:  # the listing's templates are written before its sync record
        return list((await api.get("/v1/templates/syncs", headers=admin.auth)).json())

    [sync] = await wait_for(syncs, what="the connected account's registry sync")
    assert sync["waba_id"] == meta.waba_id and sync["request_id"].endswith(f":sync:{meta.waba_id}")


async def test_the_per_user_marketing_limit_fails_the_message_with_131049(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    business = await business_factory("templates marketing limit")
    name = f"spring_sale_{fresh_id()}"
    created = await api.post("/v1/templates", headers=business.auth,
                             json={**_new_template(name), "category": "MARKETING"})
    assert created.status_code == 202, created.text
    await _status_is(api, business, created.json()["id"], "APPROVED")
    limited, free = _customer(), _customer()
    await sim.post("/_sim/recipients/marketing-limited", json={"wa_id": limited})
    ids = {}
    for to in (limited, free):
        sent = await api.post("/v1/messages", headers=business.auth, json=_send(name, "Ann", "42", to=to))
        assert sent.status_code == 202, sent.text
        ids[to] = sent.json()["id"]
    failed = await _message_status(api, business, ids[limited], {"failed"})
    assert failed["error"]["code"] == 131049 and failed["attempts"] == 1
    await _message_status(api, business, ids[free], {"delivered", "read"})
