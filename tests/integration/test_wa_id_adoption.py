"""Meta's returned ``wa_id`` adopted: a send to a number Meta knows by another id (a Brazilian mobile registered
before the ninth digit) leaves one contact, under Meta's id, found again by the number it was entered with.

The simulator answers a send to the number with the other id (``POST /_sim/customers/wa_ids``), as Meta does
in ``contacts[].wa_id``; the dispatcher passes it on in the send's result and the projector adopts it.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.helpers import Business, BusinessFactory, customer_writes, rows, wait_for

pytestmark = pytest.mark.usefixtures("pipeline_ready")

TEMPLATE = {"type": "template", "template": {"name": "order_update", "language": {"code": "en_US"}, "components": [
    {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]}}


def _brazilian() -> tuple[str, str]:
    """A São Paulo mobile as dialled (with the ninth digit) and the WhatsApp id Meta knows it by (without)."""
    line = f"{random.randrange(10**7, 10**8)}"
    return f"55119{line}", f"5511{line}"


async def _contacts(db: AsyncEngine, business: Business) -> list[dict[str, Any]]:
    found = await rows(db, "SELECT wa_id, e164, tags, attributes, profile_name FROM contacts WHERE tenant_id = :t "
                           "ORDER BY wa_id", t=business.tenant_id)
    return [dict(r._mapping) for r in found]


async def _send_template(api: httpx.AsyncClient, business: Business, to: str) -> None:
    """Send the template to ``to`` and wait until Meta has accepted it."""
    sent = await api.post("/v1/messages", headers=business.auth,
                          json={"from": business.phone_number_id, "to": to, **TEMPLATE})
    assert sent.status_code == 202, sent.text

    async def accepted() -> dict[str, Any] | None:
        message = (await api.get(f"/v1/messages/{sent.json()['id']}", headers=business.auth)).json()
        assert message.get("status") != "failed", message.get("error")
        return message if message.get("status") in ("accepted", "sent", "delivered", "read") else None

    await wait_for(accepted, what="Meta to accept the template")


async def _metas_id(sim: httpx.AsyncClient, business: Business, number: str, wa_id: str) -> None:
    """Meta knows ``number`` as ``wa_id``; the business's WABA holds the template sent to it."""
    added = await sim.post("/_sim/templates", json={"waba_id": business.waba_id, "name": "order_update",
                                                    "language": "en_US", "parameters": {"body": 1}})
    assert added.status_code == 200, added.text
    response = await sim.post("/_sim/customers/wa_ids", json={"number": number, "wa_id": wa_id})
    assert response.status_code == 200, response.text


async def test_an_entered_contact_takes_metas_wa_id_and_the_customers_reply_finds_it(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine) -> None:
    business = await business_factory("wa_id adoption")
    dialled, metas = _brazilian()
    created = await api.post("/v1/contacts", headers=business.auth,
                             json={"phone": f"+{dialled}", "tags": ["vip"], "attributes": {"city": "São Paulo"}})
    assert created.status_code == 201, created.text
    assert created.json()["wa_id"] == dialled  # until Meta says otherwise, the number's digits
    await _metas_id(sim, business, dialled, metas)

    await _send_template(api, business, dialled)
    wanted = [{"wa_id": metas, "e164": f"+{dialled}", "tags": ["vip"], "attributes": {"city": "São Paulo"},
               "profile_name": None}]

    async def adopted() -> bool:
        return await _contacts(db, business) == wanted

    await wait_for(adopted, timeout=60, what=f"the contact to take Meta's wa_id, as {wanted}")
    # The customer answers from the id Meta knows: the same contact, no second one.
    await customer_writes(sim, db, business, metas, name="Ana")
    [contact] = await _contacts(db, business)
    assert contact["wa_id"] == metas and contact["tags"] == ["vip"] and contact["e164"] == f"+{dialled}"
    # Entering the number again finds that contact (by the number it was entered with).
    again = await api.post("/v1/contacts", headers=business.auth, json={"phone": f"+{dialled}"})
    assert again.status_code == 409, again.text
    assert len(await _contacts(db, business)) == 1


async def test_a_contact_entered_after_the_customer_wrote_is_merged_into_the_customers(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine) -> None:
    business = await business_factory("wa_id merge")
    dialled, metas = _brazilian()
    await customer_writes(sim, db, business, metas, name="Ana")  # a contact under Meta's id, from the message
    await wait_for(lambda: _contacts(db, business), what="the writing customer's contact")
    created = await api.post("/v1/contacts", headers=business.auth,
                             json={"phone": f"+{dialled}", "tags": ["imported"], "attributes": {"plan": "gold"}})
    assert created.status_code == 201, created.text  # the number's digits are not Meta's id: a second contact
    assert [c["wa_id"] for c in await _contacts(db, business)] == sorted([metas, dialled])
    await _metas_id(sim, business, dialled, metas)

    await _send_template(api, business, dialled)

    async def merged() -> list[dict[str, Any]] | None:
        found = await _contacts(db, business)
        return found if [c["wa_id"] for c in found] == [metas] else None

    [contact] = await wait_for(merged, timeout=60, what="the two contacts to be one under Meta's wa_id")
    assert contact["tags"] == ["imported"] and contact["attributes"] == {"plan": "gold"}
    assert contact["e164"] == f"+{dialled}"
