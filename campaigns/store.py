"""Campaign rows in PostgreSQL and the state copy in Redis the dispatcher reads (shared by the API and the
campaign stream processors; every query names the tenant or a campaign id that was checked against it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Row, exists, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns.funnel import funnel
from campaigns.states import CampaignState, RecipientState
from config import redis_keys
from db.tables import campaign_recipient_tallies, campaign_recipients, campaigns, phone_numbers, whatsapp_accounts

# Deleting the rows and inserting their sums in one statement: a reader sees the rows before or after, never half.
FOLD = text(
    "WITH gone AS (DELETE FROM campaign_recipient_tallies WHERE campaign_id = CAST(:c AS uuid) "
    "RETURNING state, detail, n) "
    "INSERT INTO campaign_recipient_tallies (campaign_id, state, detail, n) "
    "SELECT CAST(:c AS uuid), state, detail, sum(n) FROM gone GROUP BY state, detail HAVING sum(n) <> 0")
LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(:key))")


async def load(conn: AsyncConnection, campaign_id: str, tenant_id: str | None = None) -> Row[Any] | None:
    """The campaign's row (of ``tenant_id`` when given), or None."""
    query = select(campaigns).where(campaigns.c.id == campaign_id)
    if tenant_id is not None:
        query = query.where(campaigns.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def number_rate(conn: AsyncConnection, campaign: Row[Any]) -> int:
    """The messages a second the campaign's number may send (Meta's default 80 for a number no longer listed)."""
    return (await sending_number(conn, campaign))[0]


Sender = tuple[int, str | None]  # a number's messages a second, and its WhatsApp account's status


async def sending_number(conn: AsyncConnection, campaign: Row[Any]) -> Sender:
    """The messages a second the campaign's number may send (Meta's default 80 for a number no longer listed), and
    the status of its WhatsApp account (``connected``, ``needs_reauth``, ``disconnected``; None: no account)."""
    return (await sending_numbers(conn, [campaign]))[(str(campaign.tenant_id), campaign.phone_number_id)]


async def sending_numbers(conn: AsyncConnection, campaigns_: Sequence[Row[Any]]) -> dict[tuple[str, str], Sender]:
    """``sending_number`` of each campaign in one query, by (tenant id, phone number id)."""
    pairs = sorted({(str(c.tenant_id), c.phone_number_id) for c in campaigns_})
    found: dict[tuple[str, str], Sender] = {pair: (80, None) for pair in pairs}
    if not pairs:
        return found
    rows = await conn.execute(
        select(phone_numbers.c.tenant_id, phone_numbers.c.phone_number_id, phone_numbers.c.throughput_mps,
               whatsapp_accounts.c.status)
        .select_from(phone_numbers.outerjoin(whatsapp_accounts, (whatsapp_accounts.c.waba_id == phone_numbers.c.waba_id)
                                             & (whatsapp_accounts.c.tenant_id == phone_numbers.c.tenant_id)))
        .where(tuple_(phone_numbers.c.tenant_id, phone_numbers.c.phone_number_id).in_(pairs)))
    for row in rows:
        found[(str(row.tenant_id), row.phone_number_id)] = (max(1, int(row.throughput_mps or 80)), row.status)
    return found


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


Counts = list[tuple[str, str | None, int]]  # (state, reason or error code, number) of a campaign's recipients


async def state_counts(conn: AsyncConnection, campaign_id: str) -> Counts:
    """(state, reason or error code, number) of the campaign's recipients, from their tallies (migration 0022):
    the rows written since the last ``fold_tallies``, not one per recipient."""
    return (await state_counts_of(conn, [campaign_id]))[str(campaign_id)]


async def state_counts_of(conn: AsyncConnection, campaign_ids: Iterable[str]) -> dict[str, Counts]:
    """``state_counts`` of each campaign, in one query."""
    wanted = sorted({str(c) for c in campaign_ids})
    counts: dict[str, Counts] = {c: [] for c in wanted}
    if not wanted:
        return counts
    t = campaign_recipient_tallies.c
    rows = await conn.execute(
        select(t.campaign_id, t.state, t.detail, func.sum(t.n)).where(t.campaign_id.in_(wanted))
        .group_by(t.campaign_id, t.state, t.detail).having(func.sum(t.n) != 0))
    for campaign_id, state, d, n in rows:
        counts[str(campaign_id)].append((str(state), None if d is None else str(d), int(n)))
    return counts


async def fold_tallies(conn: AsyncConnection, campaign_ids: Iterable[str]) -> int:
    """Fold each campaign's tally rows into one per (state, detail), in the caller's transaction, so a read stays
    small however many statements wrote; skips a campaign another transaction is folding (never waits). Writers
    call it for the campaigns their batch touched. Returns how many it folded."""
    folded = 0
    for campaign_id in sorted(set(campaign_ids)):
        if await conn.scalar(LOCK, {"key": f"campaign-tallies:{campaign_id}"}):
            await conn.execute(FOLD, {"c": campaign_id})
            folded += 1
    return folded


async def funnel_of(conn: AsyncConnection, campaign_id: str) -> dict[str, object]:
    return funnel(await state_counts(conn, campaign_id))


async def funnels_of(conn: AsyncConnection, campaign_ids: Iterable[str]) -> dict[str, dict[str, object]]:
    """Each campaign's funnel, in one query."""
    return {c: funnel(counts) for c, counts in (await state_counts_of(conn, campaign_ids)).items()}


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
