"""Every real Meta webhook goes ingress → router → PostgreSQL with the right tenant and fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.helpers import VECTORS, Poster, TenantFactory, rows, wait_for

WEBHOOKS = sorted((VECTORS / "webhooks").glob("*.json"))


def _retarget(body: dict[str, Any], phone_number_id: str, waba_id: str) -> dict[str, Any]:
    """Point a vector at this test's own tenant: its own number and WABA, nothing else changed."""
    for entry in body["entry"]:
        entry["id"] = waba_id
        for change in entry["changes"]:
            metadata = change["value"].get("metadata")
            if isinstance(metadata, dict):
                metadata["phone_number_id"] = phone_number_id
    return body


def _expected(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    messages, statuses, other = [], [], []
    for entry in body["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            if change["field"] == "messages":
                messages += value.get("messages", [])
                statuses += value.get("statuses", [])
                if value.get("errors"):
                    other.append("messages")
            else:
                other.append(change["field"])
    return messages, statuses, other


def test_there_are_91_vectors() -> None:
    assert len(WEBHOOKS) == 91


@pytest.mark.usefixtures("pipeline_ready")
@pytest.mark.parametrize("path", WEBHOOKS, ids=[p.name for p in WEBHOOKS])
async def test_vector_reaches_postgres(path: Path, tenant_factory: TenantFactory, post: Poster,
                                       db: AsyncEngine) -> None:
    tenant = await tenant_factory(path.stem)
    body = _retarget(json.loads(path.read_text()), tenant.phone_number_id, tenant.waba_id)
    messages, statuses, other = _expected(body)
    assert messages or statuses or other, "vector with nothing in it"
    status_wamids = {s["id"] for s in statuses}

    response = await post(body)
    assert response.status_code == 200, response.text

    async def stored() -> bool:
        got_m = await rows(db, "SELECT wamid, type, text, direction, payload FROM messages "
                               "WHERE tenant_id = :t AND direction = 'inbound'", t=tenant.tenant_id)
        # Only the vector's own statuses: a message may make Aerostic answer (e.g. an "Unsubscribe" button opts
        # the contact out and confirms), and that answer's statuses are the tenant's too.
        got_s = [r for r in await rows(db, "SELECT wamid, status, error_code FROM message_statuses "
                                           "WHERE tenant_id = :t", t=tenant.tenant_id) if r.wamid in status_wamids]
        got_o = await rows(db, "SELECT field FROM account_events WHERE tenant_id = :t", t=tenant.tenant_id)
        return (len({m["id"] for m in messages}) == len(got_m) and len(statuses) == len(got_s)
                and len(other) == len(got_o))

    await wait_for(stored, timeout=30, what=f"{path.name} in PostgreSQL")

    by_wamid = {r.wamid: r for r in await rows(
        db, "SELECT wamid, type, text, payload FROM messages WHERE tenant_id = :t AND direction = 'inbound'",
        t=tenant.tenant_id)}
    for message in messages:
        row = by_wamid[message["id"]]
        assert row.type == message["type"]
        assert row.payload["id"] == message["id"]
        if message["type"] == "text":
            assert row.text == message["text"]["body"]
    history = {(r.wamid, r.status): r for r in await rows(
        db, "SELECT wamid, status, error_code FROM message_statuses WHERE tenant_id = :t", t=tenant.tenant_id)}
    for status in statuses:
        row = history[(status["id"], status["status"])]
        if status.get("errors"):
            assert row.error_code == status["errors"][0]["code"]
    fields = sorted(r.field for r in await rows(db, "SELECT field FROM account_events WHERE tenant_id = :t",
                                                   t=tenant.tenant_id))
    assert fields == sorted(other)
