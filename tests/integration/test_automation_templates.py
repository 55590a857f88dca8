"""An automation's template reply is checked against the template registry when the rule is saved, as the send
API checks a send: unknown (once the WABA's registry was synced), not approved, or wrong parameters is a 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.helpers import Business, BusinessFactory, fresh_id
from tests.integration.test_templates import _approved, _status_is, _synced

pytestmark = pytest.mark.usefixtures("pipeline_ready")

WHERE = "body.actions.1.reply.message.template"  # the template reply is the rule's second action


def _rule(name: str, *values: str) -> dict[str, Any]:
    template = {"name": name, "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}]}
    return {"name": f"reply with {name}", "trigger": {"type": "keyword", "keywords": ["status"]},
            "actions": [{"type": "add_tag", "tag": "asked"},
                        {"type": "reply", "message": {"type": "template", "template": template}}]}


async def _refused(api: httpx.AsyncClient, business: Business, body: dict[str, Any], code: str,
                   rule_id: str | None = None) -> str:
    """The 422's message, after checking that it names the template and gives ``code``."""
    if rule_id is None:
        response = await api.post("/v1/automations", headers=business.auth, json=body)
    else:
        response = await api.put(f"/v1/automations/{rule_id}", headers=business.auth, json=body)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert ".".join(map(str, problem["loc"])) == WHERE and code in problem["msg"], problem
    return str(problem["msg"])


async def _rules(api: httpx.AsyncClient, business: Business) -> list[dict[str, Any]]:
    response = await api.get("/v1/automations", headers=business.auth)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_a_template_reply_is_checked_against_the_registry_when_saved(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    business = await business_factory("automation templates")
    name = f"order_update_{fresh_id()}"
    template = await _approved(api, business, name)
    ref = {"waba_id": business.waba_id, "name": name, "language": "en_US"}
    paused = await sim.post("/_sim/templates/status", json={**ref, "event": "PAUSED"})
    assert paused.status_code == 200 and paused.json()["webhook_delivered"] is True, paused.text
    await _status_is(api, business, template["id"], "PAUSED")
    # A template the registry holds is checked whether or not the WABA was synced: a paused one is refused.
    message = await _refused(api, business, _rule(name, "Ann", "860198"), "template_not_approved")
    assert "PAUSED" in message
    await sim.post("/_sim/templates/status", json={**ref, "event": "REINSTATED"})
    await _status_is(api, business, template["id"], "APPROVED")

    # Before the WABA's registry was ever synced it cannot know every template: an unknown one is kept.
    unknown = await api.post("/v1/automations", headers=business.auth, json=_rule(f"{name}_x", "Ann", "1"))
    assert unknown.status_code == 201, unknown.text
    assert (await api.delete(f"/v1/automations/{unknown.json()['id']}", headers=business.auth)).status_code == 204

    await _synced(api, business)
    message = await _refused(api, business, _rule(f"{name}_x", "Ann", "1"), "template_not_found")
    assert f"{name}_x" in message and business.waba_id in message
    message = await _refused(api, business, _rule(name, "Ann"), "template_parameter_mismatch")
    assert "body expects 2 parameter(s), 1 given" in message
    assert await _rules(api, business) == []  # nothing refused was stored

    saved = await api.post("/v1/automations", headers=business.auth, json=_rule(name, "Ann", "860198"))
    assert saved.status_code == 201, saved.text
    rule_id = saved.json()["id"]
    await _refused(api, business, _rule(name, "Ann", "860198", "extra"), "template_parameter_mismatch", rule_id)
    assert await _rules(api, business) == [saved.json()]  # a refused replacement leaves the rule as it was

    again = await api.put(f"/v1/automations/{rule_id}", headers=business.auth, json=_rule(name, "Ann", "860198"))
    assert again.status_code == 200, again.text
