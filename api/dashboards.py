"""``GET /v1/dashboards``: the tenant's volume, delivery, failures, response times, AI deflection, campaign
funnels and portfolio tier use over one range (admins; the console's dashboards page reads it).

The range and buckets are ``api.dashboard_range``'s (at most 93 days, the tenant's time zone); the figures
are aggregated by PostgreSQL from the projections (``api.dashboard_queries``, which says why), in one
repeatable-read transaction, so every figure sees the same snapshot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select, text

from api import dashboard_queries as figures
from api.auth import AdminDep
from api.dashboard_models import Dashboard
from api.dashboard_range import RangeError, resolve
from api.deps import EngineDep, RedisDep
from db.tables import tenant_settings

router = APIRouter(prefix="/v1", tags=["dashboards"])
STATEMENT_TIMEOUT_MS = 15_000  # each query of one answer; the range bounds make them far quicker

DateOrTime = Annotated[str | None, Query(max_length=40, description="a date (YYYY-MM-DD, the tenant's day) or an "
                                                                    "ISO 8601 time")]


@router.get("/dashboards", responses={422: {"description": "a bad or too long range, or a bad bucket"}})
async def dashboards(principal: AdminDep, engine: EngineDep, redis: RedisDep,
                     period: Annotated[str | None, Query(max_length=10, description="today, 7d or 30d")] = None,
                     from_: Annotated[str | None, Query(alias="from", max_length=40,
                                                        description="the first day (YYYY-MM-DD) or time")] = None,
                     to: DateOrTime = None,
                     bucket: Annotated[str | None, Query(max_length=10, description="hour or day")] = None,
                     ) -> Dashboard:
    """The dashboards' figures over ``period`` or ``from`` to ``to`` (``from`` and ``to`` dates are whole days)."""
    tenant = principal.tenant_id
    async with engine.connect() as conn:
        zone = await conn.scalar(select(tenant_settings.c.timezone).where(tenant_settings.c.tenant_id == tenant))
    try:
        rng = resolve(timezone=zone or "UTC", now=datetime.now(UTC), period=period, start=from_, end=to,
                      bucket=bucket)
    except RangeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        await conn.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        volume = await figures.volume(conn, tenant, rng)
        responses = await figures.responses(conn, tenant, rng)
        found = {"failures": await figures.failures(conn, tenant, rng),
                 "agents": responses.pop("agents"), "responses": responses,
                 "ai": await figures.ai_outcomes(conn, tenant, rng),
                 "campaigns": await figures.campaign_funnels(conn, tenant, rng),
                 "portfolio": await figures.portfolio_use(conn, redis, tenant)}
    return Dashboard.model_validate({"start": rng.start, "end": rng.end, "timezone": rng.timezone,
                                     "bucket": rng.bucket, "period": rng.period, "generated_at": datetime.now(UTC),
                                     **volume, **found})
