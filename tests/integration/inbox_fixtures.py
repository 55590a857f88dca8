"""What the inbox's tests share: conversations written as the projector writes them, and approved templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import contacts, conversations
from tests.integration.helpers import Business, wait_for

ORDER_BODY = "Hi {{1}}, your order {{2}} has shipped."


async def seed(db: AsyncEngine, business: Business, wa_id: str, *, name: str | None = None, minutes_ago: int = 0,
               inbound_minutes_ago: int | None = None, state: str = "bot", assignee: str | None = None,
               team: str | None = None, tags: tuple[str, ...] = (), changed_minutes_ago: int = 0) -> str:
    """A conversation and its contact as the projector writes them (at a version the processor never
    overwrites); returns the conversation key."""
    now, key = datetime.now(UTC), business.conversation(wa_id)
    inbound = now - timedelta(minutes=minutes_ago if inbound_minutes_ago is None else inbound_minutes_ago)
    async with db.begin() as conn:
        await conn.execute(insert(conversations).values(
            key=key, tenant_id=business.tenant_id, phone_number_id=business.phone_number_id, wa_id=wa_id,
            last_message_at=now - timedelta(minutes=minutes_ago), last_inbound_at=inbound, state=state,
            assignee_id=assignee, team=team, version=1000,
            state_changed_at=now - timedelta(minutes=changed_minutes_ago)))
        await conn.execute(insert(contacts).values(tenant_id=business.tenant_id, wa_id=wa_id, profile_name=name,
                                                   tags=list(tags)))
    return key


async def approved_template(api: httpx.AsyncClient, business: Business, name: str) -> dict[str, Any]:
    """A template created through the API and approved by the simulator's review (its webhook), as the registry
    then holds it."""
    created = await api.post("/v1/templates", headers=business.auth, json={
        "name": name, "language": "en_US", "category": "UTILITY", "components": [
            {"type": "BODY", "text": ORDER_BODY, "example": {"body_text": [["Ann", "860198"]]}},
            {"type": "FOOTER", "text": "Aerostic test shop"}]})
    assert created.status_code == 202, created.text
    template_id = created.json()["id"]

    async def approved() -> dict[str, Any] | None:
        response = await api.get(f"/v1/templates/{template_id}", headers=business.auth)
        if response.status_code == 404:  # the projector has not written the creation request yet
            return None
        assert response.status_code == 200, response.text
        return dict(response.json()) if response.json()["status"] == "APPROVED" else None

    return dict(await wait_for(approved, timeout=90, what=f"template {name} to be approved"))
