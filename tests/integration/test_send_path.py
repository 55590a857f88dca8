"""Sending, end to end: send API → conversation processor → dispatcher → Meta simulator → statuses back.

Every test works through the real broker, PostgreSQL, Redis, the dispatcher process and the
simulator over HTTP, each in a tenant (and phone number) of its own.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.helpers import Business, BusinessFactory, Poster, customer_writes, sim_counts, wait_for

pytestmark = pytest.mark.usefixtures("pipeline_ready")


def _wa_id() -> str:
    return f"1555{random.randrange(10**6, 10**7)}"


async def _send(api: httpx.AsyncClient, business: Business, to: str, message: dict[str, Any],
                **extra: Any) -> str:
    response = await api.post("/v1/messages", headers=business.auth,
                              json={"from": business.phone_number_id, "to": to, **message, **extra})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _message(api: httpx.AsyncClient, business: Business, message_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/messages/{message_id}", headers=business.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _status_becomes(api: httpx.AsyncClient, business: Business, message_id: str, status: str,
                          timeout: float = 60) -> dict[str, Any]:  # noqa: ASYNC109
    async def probe() -> dict[str, Any] | None:
        current = await _message(api, business, message_id)
        return current if current["status"] == status else None

    result: dict[str, Any] = await wait_for(probe, timeout=timeout, what=f"{message_id} to be {status}")
    return result


async def _graph_requests(sim: httpx.AsyncClient, business: Business) -> list[dict[str, Any]]:
    response = await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})
    response.raise_for_status()
    return [r for r in response.json()["data"] if r["path"].endswith("/messages")]


SHAPES: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": {"body": "Your order shipped 📦"}},
    "template": {"type": "template", "template": {"name": "order_update", "language": {"code": "en_US"},
                                                  "components": [{"type": "body", "parameters": [
                                                      {"type": "text", "text": "Mark"}]}]}},
    "interactive": {"type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Was this helpful?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                               {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}},
    "image": {"type": "image", "image": {"link": "https://example.com/receipt.jpg", "caption": "Receipt"}},
}


async def test_each_kind_of_message_reaches_meta_as_sent_and_becomes_read(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        db: AsyncEngine) -> None:
    business = await business_factory("shapes")
    await sim.post("/_sim/templates", json={"waba_id": business.waba_id, "name": "order_update",
                                            "language": "en_US", "parameters": {"body": 1}})
    customer = _wa_id()
    await customer_writes(sim, db, business, customer, "where is my order?")
    ids = {kind: await _send(api, business, customer, shape) for kind, shape in SHAPES.items()}
    for message_id in ids.values():
        read = await _status_becomes(api, business, message_id, "read")
        assert [h["status"] for h in read["history"]][-3:] == ["sent", "delivered", "read"]
        assert read["wamid"].startswith("wamid.")
    requests = await _graph_requests(sim, business)
    by_marker = {r["biz_opaque_callback_data"]: r for r in requests}
    for kind, message_id in ids.items():
        request = by_marker[f"{business.tenant_id}:{message_id}"]
        assert request["status"] == 200
        assert request["headers"]["authorization"] == f"Bearer {business.token}"
        assert request["path"].split("/")[-2] == business.phone_number_id
        body = request["body"]
        assert body["messaging_product"] == "whatsapp" and body["to"] == customer
        assert body["type"] == kind and body[kind] == SHAPES[kind][kind]


async def test_free_form_outside_the_window_fails_locally_and_a_template_goes(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        db: AsyncEngine) -> None:
    business = await business_factory("window")
    await sim.post("/_sim/templates", json={"waba_id": business.waba_id, "name": "order_update",
                                            "language": "en_US", "parameters": {"body": 1}})
    customer = _wa_id()
    two_days_ago = int(datetime.now(UTC).timestamp()) - 2 * 86400
    await customer_writes(sim, db, business, customer, "old question", timestamp=two_days_ago)
    late = await _send(api, business, customer, SHAPES["text"])
    failed = await _status_becomes(api, business, late, "failed")
    assert failed["error"]["title"] == "outside_service_window"
    template = await _send(api, business, customer, SHAPES["template"])
    await _status_becomes(api, business, template, "read")
    markers = {r["biz_opaque_callback_data"] for r in await _graph_requests(sim, business)}
    assert f"{business.tenant_id}:{template}" in markers
    assert f"{business.tenant_id}:{late}" not in markers  # Meta never saw the free-form message


async def test_permanent_meta_errors_fail_at_once_with_their_code(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        db: AsyncEngine) -> None:
    business = await business_factory("permanent")
    customer, gone = _wa_id(), _wa_id()
    await customer_writes(sim, db, business, customer)
    await customer_writes(sim, db, business, gone)
    await sim.post("/_sim/recipients/undeliverable", json={"wa_id": gone})
    unknown_template = await _send(api, business, customer, {"type": "template", "template": {
        "name": "does_not_exist", "language": {"code": "en_US"}}})
    undeliverable = await _send(api, business, gone, SHAPES["text"])
    failed = await _status_becomes(api, business, unknown_template, "failed")
    assert failed["error"]["code"] == 132001 and failed["attempts"] == 1
    failed = await _status_becomes(api, business, undeliverable, "failed")
    assert failed["error"]["code"] == 131026
    markers = [r["biz_opaque_callback_data"] for r in await _graph_requests(sim, business)]
    assert markers.count(f"{business.tenant_id}:{unknown_template}") == 1  # not retried


async def test_server_errors_are_retried_until_each_message_is_accepted_once(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        db: AsyncEngine) -> None:
    business = await business_factory("flaky")
    customers = [_wa_id() for _ in range(10)]
    for customer in customers:
        await customer_writes(sim, db, business, customer)
    await sim.post(f"/_sim/faults/{business.phone_number_id}", json={"error_5xx_rate": 0.3, "seed": 3})
    ids = [await _send(api, business, c, {"type": "text", "text": {"body": f"hi {i}"}})
           for i in range(3) for c in customers]
    for message_id in ids:
        await _status_becomes(api, business, message_id, "read", timeout=90)
    await sim.delete(f"/_sim/faults/{business.phone_number_id}")
    by_marker = (await sim_counts(sim))["by_marker"]
    assert [by_marker.get(f"{business.tenant_id}:{m}") for m in ids] == [1] * len(ids)
    statuses = [r["status"] for r in await _graph_requests(sim, business)]
    assert any(s >= 500 for s in statuses)  # the faults did happen


async def test_a_revoked_token_holds_sends_until_the_token_is_replaced(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        db: AsyncEngine) -> None:
    from tests.integration.helpers import VAULT_KEYS, scalar
    from vault.cipher import Vault
    from vault.store import store_token

    business = await business_factory("revoked")
    customer = _wa_id()
    await customer_writes(sim, db, business, customer)
    await sim.post("/_sim/tokens/revoke", json={"token": business.token})
    held = await _send(api, business, customer, SHAPES["text"])
    async def needs_reauth() -> bool:
        status = await scalar(db, "SELECT status FROM whatsapp_accounts WHERE waba_id = :w", w=business.waba_id)
        return bool(status == "needs_reauth")

    await wait_for(needs_reauth, what="the account to need re-auth")
    assert (await _message(api, business, held))["status"] == "queued"
    fresh = f"EAAG{random.getrandbits(128):032x}"
    await sim.post("/_sim/tokens", json={"token": fresh, "waba_id": business.waba_id})
    async with db.begin() as conn:
        await store_token(conn, Vault.from_spec(VAULT_KEYS), tenant_id=business.tenant_id,
                          waba_id=business.waba_id, token=fresh)
    await _status_becomes(api, business, held, "read")
    accepted = [r for r in await _graph_requests(sim, business) if r["status"] == 200]
    assert [r["headers"]["authorization"] for r in accepted] == [f"Bearer {fresh}"]


async def test_limits_are_respected_not_discovered(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        db: AsyncEngine) -> None:
    slow = await business_factory("coexistence", throughput=20)
    # The customers' "hello" opens each window; the AI agent (on by default) would answer it with the small-talk
    # greeting from the same number, 40 sends more than the 400 counted below. Here only the API sends.
    off = await api.put("/v1/settings/small-talk", headers=slow.auth, json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False, off.text
    customers = [_wa_id() for _ in range(40)]
    for customer in customers:
        await customer_writes(sim, db, slow, customer)
    ids = [await _send(api, slow, customers[i % 40], {"type": "text", "text": {"body": f"n{i}"}})
           for i in range(400)]
    one = await business_factory("pair")
    customer = _wa_id()
    await customer_writes(sim, db, one, customer)
    pair_ids = [await _send(api, one, customer, {"type": "text", "text": {"body": f"p{i}"}}) for i in range(60)]

    async def all_accepted() -> bool:
        markers = (await sim_counts(sim))["by_marker"]
        return all(f"{b.tenant_id}:{m}" in markers for b, sent in ((slow, ids), (one, pair_ids)) for m in sent)

    await wait_for(all_accepted, timeout=120, what="all 460 messages to be accepted")
    codes = [r["response"]["error"]["code"] for b in (slow, one) for r in await _graph_requests(sim, b)
             if r["status"] != 200]
    assert 130429 not in codes and 131056 not in codes
    per_second = (await sim_counts(sim))["per_second"][slow.phone_number_id]
    assert max(per_second.values()) <= 20 and sum(per_second.values()) == 400


async def test_a_tenant_cannot_use_another_tenants_number_or_read_its_messages(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        db: AsyncEngine) -> None:
    a, b = await business_factory("tenant a"), await business_factory("tenant b")
    customer = _wa_id()
    await customer_writes(sim, db, b, customer)
    theirs = await _send(api, b, customer, SHAPES["text"])
    refused = await api.post("/v1/messages", headers=a.auth,
                             json={"from": b.phone_number_id, "to": customer, **SHAPES["text"]})
    assert refused.status_code == 404
    assert (await api.get(f"/v1/messages/{theirs}", headers=a.auth)).status_code == 404
    history = await api.get(f"/v1/conversations/{b.conversation(customer)}/messages", headers=a.auth)
    assert history.status_code == 404
    await _status_becomes(api, b, theirs, "read")


async def test_a_partner_removed_webhook_holds_sends_until_the_account_reconnects(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
        post: Poster) -> None:
    from tests.integration.helpers import VAULT_KEYS, scalar
    from vault.cipher import Vault
    from vault.store import store_token

    business = await business_factory("offboarded")
    customer = _wa_id()
    await customer_writes(sim, db, business, customer)
    removed = {"object": "whatsapp_business_account", "entry": [{"id": business.waba_id, "time": 1748477359,
               "changes": [{"field": "account_update", "value": {
                   "event": "PARTNER_REMOVED",
                   "waba_info": {"waba_id": business.waba_id, "owner_business_id": business.business_id}}}]}]}
    assert (await post(removed)).status_code == 200

    async def disconnected() -> bool:
        status = await scalar(db, "SELECT status FROM whatsapp_accounts WHERE waba_id = :w", w=business.waba_id)
        return bool(status == "disconnected")

    await wait_for(disconnected, what="the account to be marked disconnected")
    held = await _send(api, business, customer, SHAPES["text"])
    await wait_for(lambda: _queued_in_db(db, business, held), what="the message to be recorded")
    assert (await _message(api, business, held))["status"] == "queued"  # held, not failed, not dropped
    async with db.begin() as conn:  # the business reconnects (Embedded Signup stores a fresh token)
        await store_token(conn, Vault.from_spec(VAULT_KEYS), tenant_id=business.tenant_id,
                          waba_id=business.waba_id, token=business.token)
    await _status_becomes(api, business, held, "read")
    markers = [r["biz_opaque_callback_data"] for r in await _graph_requests(sim, business)]
    assert markers.count(f"{business.tenant_id}:{held}") == 1


async def _queued_in_db(db: AsyncEngine, business: Business, message_id: str) -> bool:
    from tests.integration.helpers import scalar

    found = await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND message_id = :m",
                         t=business.tenant_id, m=message_id)
    return bool(found)
