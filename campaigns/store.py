"""Campaign rows in PostgreSQL and the state copy in Redis the dispatcher reads (shared by the API and the
campaign stream processors; every query names the tenant or a campaign id that was checked against it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Row, Text, cast, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns.funnel import funnel
from campaigns.states import CampaignState, RecipientState
from config import redis_keys
from db.tables import campaign_recipients, campaigns


async def load(conn: AsyncConnection, campaign_id: str, tenant_id: str | None = None) -> Row[Any] | None:
    """The campaign's row (of ``tenant_id`` when given), or None."""
    query = select(campaigns).where(campaigns.c.id == campaign_id)
    if tenant_id is not None:
        query = query.where(campaigns.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def set_state(conn: AsyncConnection, redis: Redis, campaign_id: str, state: CampaignState, *,
                    reason: str | None = None, only_from: frozenset[CampaignState] | None = None,
                    **columns: Any) -> bool:
    """Move the campaign to ``state`` (only from ``only_from`` when given) and publish it to Redis in the same
    step, so the dispatcher's next read sees it; False when the campaign was not in an allowed state."""
    stmt = update(campaigns).where(campaigns.c.id == campaign_id).values(
        state=state.value, state_reason=reason, updated_at=func.now(), **columns)
    if only_from is not None:
        stmt = stmt.where(campaigns.c.state.in_([s.value for s in only_from]))
    if (await conn.execute(stmt)).rowcount == 0:
        return False
    await redis.set(redis_keys.campaign_state(campaign_id), state.value)
    return True


async def state_counts(conn: AsyncConnection, campaign_id: str) -> list[tuple[str, str | None, int]]:
    """(state, reason or error code, number) of the campaign's recipients."""
    detail = func.coalesce(campaign_recipients.c.reason, cast(campaign_recipients.c.error_code, Text))
    rows = await conn.execute(
        select(campaign_recipients.c.state, detail, func.count())
        .where(campaign_recipients.c.campaign_id == campaign_id)
        .group_by(campaign_recipients.c.state, detail))
    return [(str(state), None if d is None else str(d), int(n)) for state, d, n in rows]


async def funnel_of(conn: AsyncConnection, campaign_id: str) -> dict[str, object]:
    return funnel(await state_counts(conn, campaign_id))


async def complete_if_done(conn: AsyncConnection, redis: Redis, campaign_id: str) -> bool:
    """A running campaign whose audience is expanded and has no queued recipient left is completed."""
    row = (await conn.execute(select(campaigns.c.state, campaigns.c.expanded_at).where(
        campaigns.c.id == campaign_id))).first()
    if row is None or row.state != CampaignState.RUNNING or row.expanded_at is None:
        return False
    queued = await conn.scalar(select(exists().where(
        campaign_recipients.c.campaign_id == campaign_id,
        campaign_recipients.c.state == RecipientState.QUEUED.value)))
    if queued:
        return False
    return await set_state(conn, redis, campaign_id, CampaignState.COMPLETED,
                           only_from=frozenset({CampaignState.RUNNING}), finished_at=datetime.now(UTC))
