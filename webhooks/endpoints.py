"""A tenant's webhook endpoints in PostgreSQL: create, list, get, update, delete, rotate the secret; the delivery
log and redelivery requests. Every query is scoped by the tenant; the secret is returned only by ``create`` and
``rotate`` (the caller shows it once)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.keyset import Position, window
from db.tables import webhook_deliveries, webhook_endpoints, webhook_redeliveries
from webhooks.signing import generate_secret

MAX_ENDPOINTS_PER_TENANT = 20
MAX_OVERLAP = timedelta(days=7)


class TooMany(ValueError):
    """The tenant already has the most endpoints allowed."""


@dataclass(frozen=True)
class Endpoint:
    """One endpoint as its tenant sees it (never its secrets)."""

    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def state(self) -> str:
        """``active``, ``paused`` (switched off by the tenant) or ``disabled`` (by the deliverer, with a reason)."""
        if self.disabled_at is not None:
            return "disabled"
        return "active" if self.enabled else "paused"


PUBLIC_COLUMNS = [webhook_endpoints.c[name] for name in (
    "id", "url", "description", "events", "enabled", "disabled_at", "disabled_reason", "failing_since",
    "previous_secret_until", "created_at", "updated_at")]


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(**{col.name: row._mapping[col.name] for col in PUBLIC_COLUMNS})


async def create(conn: AsyncConnection, *, tenant_id: str, url: str, description: str, events: list[str],
                 enabled: bool) -> tuple[Endpoint, str]:
    """A new endpoint and its secret (shown once)."""
    count = await conn.scalar(select(func.count()).select_from(webhook_endpoints)
                              .where(webhook_endpoints.c.tenant_id == tenant_id))
    if (count or 0) >= MAX_ENDPOINTS_PER_TENANT:
        raise TooMany(f"a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints")
    secret = generate_secret()
    row = (await conn.execute(insert(webhook_endpoints).values(
        id=str(uuid.uuid4()), tenant_id=tenant_id, url=url, description=description, events=events,
        enabled=enabled, secret=secret).returning(*PUBLIC_COLUMNS))).one()
    return _endpoint(row), secret


async def listed(conn: AsyncConnection, *, tenant_id: str, limit: int, after: Position | None) -> list[Endpoint]:
    query = select(*PUBLIC_COLUMNS).where(webhook_endpoints.c.tenant_id == tenant_id)
    query = window(query, webhook_endpoints.c.created_at, webhook_endpoints.c.id, after=after, limit=limit)
    return [_endpoint(r) for r in await conn.execute(query)]


async def get(conn: AsyncConnection, *, tenant_id: str, endpoint_id: str) -> Endpoint | None:
    row = (await conn.execute(select(*PUBLIC_COLUMNS).where(
        webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id))).first()
    return _endpoint(row) if row is not None else None


async def change(conn: AsyncConnection, *, tenant_id: str, endpoint_id: str, **values: Any) -> Endpoint | None:
    """Update the given fields (``url``, ``description``, ``events``, ``enabled``); switching an endpoint on again,
    or giving it a new URL, clears the deliverer's disable and its failure streak."""
    if values.get("enabled") is True or "url" in values:
        values.update(disabled_at=None, disabled_reason=None, failing_since=None)
    row = (await conn.execute(update(webhook_endpoints).where(
        webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id).values(
        **values, updated_at=func.now()).returning(*PUBLIC_COLUMNS))).first()
    return _endpoint(row) if row is not None else None


async def remove(conn: AsyncConnection, *, tenant_id: str, endpoint_id: str) -> bool:
    """Delete the endpoint with its delivery log and redelivery requests."""
    result = await conn.execute(delete(webhook_endpoints).where(
        webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id))
    return bool(result.rowcount)


async def rotate(conn: AsyncConnection, *, tenant_id: str, endpoint_id: str,
                 overlap: timedelta) -> tuple[Endpoint, str] | None:
    """A new secret (shown once); the current one keeps signing beside it for ``overlap``."""
    secret = generate_secret()
    row = (await conn.execute(update(webhook_endpoints).where(
        webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id).values(
        previous_secret=webhook_endpoints.c.secret, previous_secret_until=func.now() + min(overlap, MAX_OVERLAP),
        secret=secret, updated_at=func.now()).returning(*PUBLIC_COLUMNS))).first()
    return (_endpoint(row), secret) if row is not None else None


@dataclass(frozen=True)
class Delivery:
    """One line of an endpoint's delivery log."""

    id: str
    event_id: str
    event_type: str
    origin: str
    state: str
    attempts: int
    response_status: int | None
    latency_ms: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    finished_at: datetime | None


LOG_COLUMNS = [webhook_deliveries.c[name] for name in (
    "id", "event_id", "event_type", "origin", "state", "attempts", "response_status", "latency_ms", "last_error",
    "created_at", "last_attempt_at", "next_attempt_at", "finished_at")]


async def deliveries(conn: AsyncConnection, *, tenant_id: str, endpoint_id: str, state: str | None, limit: int,
                     after: Position | None) -> list[Delivery]:
    """The endpoint's deliveries, newest first."""
    query = select(*LOG_COLUMNS).where(webhook_deliveries.c.tenant_id == tenant_id,
                                       webhook_deliveries.c.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(webhook_deliveries.c.state == state)
    query = window(query, webhook_deliveries.c.created_at, webhook_deliveries.c.id, after=after, limit=limit,
                   newest_first=True)
    found = []
    for row in await conn.execute(query):
        values = dict(row._mapping)
        if values["state"] != "pending":
            values["next_attempt_at"] = None
        found.append(Delivery(**values))
    return found


async def request_redelivery(conn: AsyncConnection, *, tenant_id: str, endpoint_id: str, since: datetime,
                             until: datetime, event_id: str | None) -> str:
    """Record a redelivery request for the deliverer; its id."""
    request_id = str(uuid.uuid4())
    await conn.execute(insert(webhook_redeliveries).values(
        id=request_id, tenant_id=tenant_id, endpoint_id=endpoint_id, since=since, until=until, event_id=event_id))
    return request_id


async def redelivery(conn: AsyncConnection, *, tenant_id: str, request_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(webhook_redeliveries).where(
        webhook_redeliveries.c.tenant_id == tenant_id, webhook_redeliveries.c.id == request_id))).first()
    return dict(row._mapping) if row is not None else None
