"""The tenant's WhatsApp connection: ``GET /v1/whatsapp/connection``.

One view for the console (rendered server-side and polled by its script) and for API clients:
the overall state, the latest signup attempt, the connected accounts and their numbers with
quality, messaging tier and throughput. Every query is scoped to the caller's tenant; tokens
and their ciphertexts are never selected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import TenantDep
from api.deps import EngineDep
from db.tables import phone_numbers, signups, whatsapp_accounts

router = APIRouter(prefix="/v1", tags=["whatsapp"])

ConnectionState = Literal["not_connected", "pending", "connected", "failed", "needs_reauth", "disconnected"]


class Attempt(BaseModel):
    attempt_id: str
    status: Literal["pending", "connected", "failed"]
    step: str | None
    error_code: int | None
    error_message: str | None
    requested_at: datetime | None
    finished_at: datetime | None


class Account(BaseModel):
    waba_id: str
    name: str | None
    business_id: str | None
    status: str
    status_reason: str | None


class Number(BaseModel):
    phone_number_id: str
    waba_id: str | None
    display_phone_number: str | None
    verified_name: str | None
    quality_rating: str | None
    messaging_limit_tier: str | None
    throughput_mps: int
    status: str


class ConnectionView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "state": "connected",
                "attempt": {
                    "attempt_id": "sg_7Yk2pQ9xW3", "status": "connected", "step": None, "error_code": None,
                    "error_message": None, "requested_at": "2026-11-20T08:10:00Z",
                    "finished_at": "2026-11-20T08:10:42Z",
                },
                "accounts": [
                    {
                        "waba_id": "102290129340398", "name": "Jasper's Market", "business_id": "1029384756",
                        "status": "connected", "status_reason": None,
                    },
                ],
                "numbers": [
                    {
                        "phone_number_id": "106540352242922", "waba_id": "102290129340398",
                        "display_phone_number": "+1 555-123-4500", "verified_name": "Jasper's Market",
                        "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K", "throughput_mps": 80,
                        "status": "CONNECTED",
                    },
                ],
            },
        ]})

    state: ConnectionState
    attempt: Attempt | None
    accounts: list[Account]
    numbers: list[Number]


def overall_state(attempt: Attempt | None, accounts: list[Account]) -> ConnectionState:
    """Pending while an attempt runs; else the accounts' worst state; else how the last attempt ended."""
    if attempt is not None and attempt.status == "pending":
        return "pending"
    statuses = {a.status for a in accounts}
    for worst in ("disconnected", "needs_reauth", "connected"):
        if worst in statuses:
            return worst
    if attempt is not None and attempt.status == "failed":
        return "failed"
    return "not_connected"


async def connection_view(conn: AsyncConnection, tenant_id: str) -> ConnectionView:
    """The tenant's connection as the console shows it."""
    row = (await conn.execute(
        select(signups).where(signups.c.tenant_id == tenant_id)
        .order_by(signups.c.updated_at.desc(), signups.c.attempt_id).limit(1))).first()
    attempt = None if row is None else Attempt(
        attempt_id=row.attempt_id, status=row.status, step=row.step, error_code=row.error_code,
        error_message=row.error_message, requested_at=row.requested_at, finished_at=row.finished_at)
    accounts = [Account(waba_id=r.waba_id, name=r.name, business_id=r.business_id, status=r.status,
                        status_reason=r.status_reason)
                for r in await conn.execute(
                    select(whatsapp_accounts.c.waba_id, whatsapp_accounts.c.name, whatsapp_accounts.c.business_id,
                           whatsapp_accounts.c.status, whatsapp_accounts.c.status_reason)
                    .where(whatsapp_accounts.c.tenant_id == tenant_id).order_by(whatsapp_accounts.c.waba_id))]
    numbers = [Number(phone_number_id=r.phone_number_id, waba_id=r.waba_id,
                      display_phone_number=r.display_phone_number, verified_name=r.verified_name,
                      quality_rating=r.quality_rating, messaging_limit_tier=r.messaging_limit_tier,
                      throughput_mps=r.throughput_mps, status=r.status)
               for r in await conn.execute(
                   select(phone_numbers).where(phone_numbers.c.tenant_id == tenant_id)
                   .order_by(phone_numbers.c.phone_number_id))]
    return ConnectionView(state=overall_state(attempt, accounts), attempt=attempt, accounts=accounts,
                          numbers=numbers)


@router.get("/whatsapp/connection")
async def get_connection(principal: TenantDep, engine: EngineDep) -> ConnectionView:
    """The tenant's WhatsApp connection: state, latest signup attempt, accounts and numbers."""
    async with engine.connect() as conn:
        return await connection_view(conn, principal.tenant_id)
