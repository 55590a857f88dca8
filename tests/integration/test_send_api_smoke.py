"""The tenant send API over HTTP against the session's real ingress, PostgreSQL, Redis and broker."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import CoreSettings
from metasim import payloads
from tenants.api_keys import create_api_key, create_key_for, revoke_api_key
from tests.integration.helpers import Poster, Tenant, TenantFactory, fresh_id, scalar, wait_for


async def key_for(db: AsyncEngine, tenant: Tenant) -> tuple[str, dict[str, str]]:
    async with db.begin() as conn:
        key_id, key = await create_api_key(conn, tenant_id=tenant.tenant_id, name="integration")
    return key_id, {"Authorization": f"Bearer {key}"}


async def test_operator_command_creates_a_working_key(http: httpx.AsyncClient, settings: CoreSettings,
                                                      tenant_factory: TenantFactory) -> None:
    tenant = await tenant_factory("operator key")
    _, key = await create_key_for(settings, tenant_id=tenant.tenant_id, name="operator")
    sent = await http.post("/v1/messages", json=text_message(fresh_id()), headers={"Authorization": f"Bearer {key}"})
    assert sent.status_code == 202, sent.text
    with pytest.raises(LookupError):
        await create_key_for(settings, tenant_id=str(uuid.uuid4()), name="nobody")


def text_message(to: str, **extra: Any) -> dict[str, Any]:
    return {"to": f"+{to}", "type": "text", "text": {"body": "Your order has shipped"}, **extra}


async def test_send_is_queued_and_readable(http: httpx.AsyncClient, db: AsyncEngine,
                                           tenant_factory: TenantFactory) -> None:
    tenant = await tenant_factory("send api")
    _, auth = await key_for(db, tenant)
    wa_id = fresh_id()
    sent = await http.post("/v1/messages", json=text_message(wa_id), headers=auth)
    assert sent.status_code == 202, sent.text
    accepted = sent.json()
    assert accepted["status"] == "queued" and accepted["duplicate"] is False
    assert accepted["conversation_key"] == f"{tenant.phone_number_id}:{wa_id}"
    found = await http.get(f"/v1/messages/{accepted['id']}", headers=auth)
    assert found.status_code == 200, found.text
    assert found.json()["id"] == accepted["id"] and found.json()["to"] == wa_id


async def test_idempotency_key_answers_the_same_message_once(http: httpx.AsyncClient, db: AsyncEngine,
                                                              tenant_factory: TenantFactory) -> None:
    tenant = await tenant_factory("send api idempotency")
    _, auth = await key_for(db, tenant)
    body = text_message(fresh_id(), idempotency_key=f"order-{uuid.uuid4()}")
    first = await http.post("/v1/messages", json=body, headers=auth)
    again = await http.post("/v1/messages", json=body, headers=auth)
    assert first.status_code == again.status_code == 202
    assert again.json() == {**first.json(), "duplicate": True}
    changed = await http.post("/v1/messages", json={**body, "text": {"body": "other"}}, headers=auth)
    assert changed.status_code == 422


async def test_tenants_are_isolated(http: httpx.AsyncClient, db: AsyncEngine, tenant_factory: TenantFactory) -> None:
    mine, theirs = await tenant_factory("isolated a"), await tenant_factory("isolated b")
    _, auth = await key_for(db, mine)
    _, their_auth = await key_for(db, theirs)
    foreign = await http.post("/v1/messages", json=text_message(fresh_id(), **{"from": theirs.phone_number_id}),
                              headers=auth)
    assert foreign.status_code == 404 and foreign.json() == {"detail": "unknown phone number"}
    sent = (await http.post("/v1/messages", json=text_message(fresh_id()), headers=auth)).json()
    assert (await http.get(f"/v1/messages/{sent['id']}", headers=their_auth)).status_code == 404
    listing = await http.get(f"/v1/conversations/{sent['conversation_key']}/messages", headers=their_auth)
    assert listing.status_code == 404


async def test_bad_and_revoked_keys_get_401(http: httpx.AsyncClient, db: AsyncEngine,
                                            tenant_factory: TenantFactory) -> None:
    tenant = await tenant_factory("revoked key")
    key_id, auth = await key_for(db, tenant)
    assert (await http.post("/v1/messages", json=text_message(fresh_id()), headers=auth)).status_code == 202
    async with db.begin() as conn:
        assert await revoke_api_key(conn, tenant_id=tenant.tenant_id, key_id=key_id)
    refused = await http.post("/v1/messages", json=text_message(fresh_id()), headers=auth)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert auth["Authorization"].removeprefix("Bearer ") not in refused.text
    assert (await http.get("/v1/messages/x")).status_code == 401


async def test_conversation_lists_inbound_messages_newest_first(
        http: httpx.AsyncClient, db: AsyncEngine, tenant_factory: TenantFactory, post: Poster,
        pipeline_ready: None) -> None:
    tenant = await tenant_factory("conversation listing")
    _, auth = await key_for(db, tenant)
    wa_id = fresh_id()
    for n in range(3):
        body = payloads.customer_text(tenant.phone_number_id, tenant.waba_id, wa_id, f"message {n}")
        assert (await post(body)).status_code == 200
    await wait_for(lambda: scalar(db, "SELECT count(*) = 3 FROM messages WHERE tenant_id = :t", t=tenant.tenant_id),
                   what="three inbound messages in PostgreSQL")
    key = f"{tenant.phone_number_id}:{wa_id}"
    first = (await http.get(f"/v1/conversations/{key}/messages", params={"limit": 2}, headers=auth)).json()
    rest = (await http.get(f"/v1/conversations/{key}/messages", params={"limit": 2, "before": first["next"]},
                           headers=auth)).json()
    texts = [m["text"] for m in first["messages"] + rest["messages"]]
    assert texts == ["message 2", "message 1", "message 0"] and rest["next"] is None
