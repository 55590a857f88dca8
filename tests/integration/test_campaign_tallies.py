"""A campaign's funnel counts are kept by triggers as its recipients change (migration 0022), not counted per read.

Each case writes recipients the ways the campaign workers do (multi-row inserts, ``ON CONFLICT`` upserts, batched
updates that move some rows and not others, deletes, a rolled-back transaction, two transactions at once) into
the real PostgreSQL and compares ``campaigns.store.state_counts`` (the tallies) with a count of the recipients
themselves after every step, before and after folding.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from campaigns import store
from db.tables import campaign_recipient_tallies, campaigns, tenants

RECIPIENT = text(
    "INSERT INTO campaign_recipients (campaign_id, contact, tenant_id, wa_id, seq, state, rank, reason) "
    "SELECT CAST(:c AS uuid), 'c' || i, CAST(:t AS uuid), '1555' || i, i, "
    "CASE WHEN i % 10 = 0 THEN 'skipped' ELSE 'queued' END, 0, CASE WHEN i % 10 = 0 THEN 'opted_out' END "
    "FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS i ON CONFLICT DO NOTHING")


async def counted(conn: AsyncConnection, campaign_id: str) -> Counter[tuple[str, str | None]]:
    """The recipients counted one by one, grouped as ``state_counts`` groups them."""
    rows = await conn.execute(text("SELECT state, COALESCE(reason, error_code::text), count(*) "
                                   "FROM campaign_recipients WHERE campaign_id = CAST(:c AS uuid) GROUP BY 1, 2"),
                              {"c": campaign_id})
    return Counter({(state, d): n for state, d, n in rows})


async def tallied(conn: AsyncConnection, campaign_id: str) -> Counter[tuple[str, str | None]]:
    return Counter({(state, d): n for state, d, n in await store.state_counts(conn, campaign_id)})


async def tally_rows(conn: AsyncConnection, campaign_id: str) -> int:
    t = campaign_recipient_tallies.c
    return int(await conn.scalar(select(func.count()).where(t.campaign_id == campaign_id)) or 0)


async def new_campaign(db: AsyncEngine) -> tuple[str, str]:
    tenant_id, campaign_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with db.begin() as conn:
        await conn.execute(insert(tenants).values(id=tenant_id, name="tallies"))
        await conn.execute(insert(campaigns).values(
            id=campaign_id, tenant_id=tenant_id, name="tallies", phone_number_id="1", template_name="t",
            template_language="en", audience={"kind": "segment", "filter": {}}))
    return tenant_id, campaign_id


async def agree(db: AsyncEngine, campaign_id: str) -> Counter[tuple[str, str | None]]:
    async with db.connect() as conn:
        expected = await counted(conn, campaign_id)
        assert await tallied(conn, campaign_id) == expected
    return expected


async def step(db: AsyncEngine, campaign_id: str, sql: str, **params: Any) -> Counter[tuple[str, str | None]]:
    async with db.begin() as conn:
        await conn.execute(text(sql), {"c": campaign_id, **params})
    return await agree(db, campaign_id)


async def test_tallies_follow_every_kind_of_write_and_fold_to_one_row_per_group(db: AsyncEngine) -> None:
    tenant_id, campaign_id = await new_campaign(db)
    for lo in (1, 101, 151):  # three inserts, the last overlapping the second (ON CONFLICT DO NOTHING)
        async with db.begin() as conn:
            await conn.execute(RECIPIENT, {"c": campaign_id, "t": tenant_id, "lo": lo, "hi": lo + 99})
    counts = await agree(db, campaign_id)
    assert counts == {("queued", None): 225, ("skipped", "opted_out"): 25}

    await step(db, campaign_id, "UPDATE campaign_recipients SET state = 'submitted', rank = 1 "
               "WHERE campaign_id = CAST(:c AS uuid) AND state = 'queued' AND seq <= 60")
    await step(db, campaign_id, "UPDATE campaign_recipients SET state = 'failed', error_code = 131049 "
               "WHERE campaign_id = CAST(:c AS uuid) AND state = 'submitted' AND seq % 3 = 0")
    await step(db, campaign_id, "UPDATE campaign_recipients SET reason = 'portfolio_budget' "
               "WHERE campaign_id = CAST(:c AS uuid) AND state = 'queued' AND seq > 200")
    await step(db, campaign_id, "UPDATE campaign_recipients SET updated_at = now() "
               "WHERE campaign_id = CAST(:c AS uuid)")  # no move
    await step(db, campaign_id,  # the state moves for some rows of the statement only, as the funnel's ADVANCE does
               "UPDATE campaign_recipients SET state = CASE WHEN seq % 2 = 0 THEN 'sent' ELSE state END "
               "WHERE campaign_id = CAST(:c AS uuid) AND state = 'submitted'")
    await step(db, campaign_id,
               "INSERT INTO campaign_recipients (campaign_id, contact, tenant_id, seq, state, rank) "
               "SELECT campaign_id, contact, tenant_id, seq, state, rank FROM campaign_recipients "
               "WHERE campaign_id = CAST(:c AS uuid) AND seq BETWEEN 240 AND 260 "
               "ON CONFLICT (campaign_id, contact) DO UPDATE SET state = 'skipped', reason = 'invalid_number'")
    counts = await step(db, campaign_id, "DELETE FROM campaign_recipients "
               "WHERE campaign_id = CAST(:c AS uuid) AND seq > 245")

    async with db.begin() as conn:  # a rolled-back write leaves the tallies as they were
        await conn.execute(text("UPDATE campaign_recipients SET state = 'read' "
                                "WHERE campaign_id = CAST(:c AS uuid)"), {"c": campaign_id})
        await conn.rollback()
    assert await agree(db, campaign_id) == counts

    async with db.connect() as conn:
        written = await tally_rows(conn, campaign_id)
    async with db.begin() as conn:
        assert await store.fold_tallies(conn, [campaign_id, campaign_id]) == 1
    async with db.connect() as conn:
        assert await tally_rows(conn, campaign_id) == len(counts) < written
    assert await agree(db, campaign_id) == counts
    funnel = await _funnel(db, campaign_id)
    assert funnel["targeted"] == counts.total() == 245 and funnel["failed_by_code"] == {"131049": 18}

    async with db.begin() as conn:  # a deleted campaign takes its recipients and tallies along
        await conn.execute(text("DELETE FROM campaigns WHERE id = CAST(:c AS uuid)"), {"c": campaign_id})
    async with db.connect() as conn:
        assert await tally_rows(conn, campaign_id) == 0


async def test_folds_never_wait_for_each_other_and_lose_no_concurrent_write(db: AsyncEngine) -> None:
    tenant_id, campaign_id = await new_campaign(db)
    async with db.begin() as conn:
        await conn.execute(RECIPIENT, {"c": campaign_id, "t": tenant_id, "lo": 1, "hi": 100})
    async with db.connect() as one, db.connect() as two:
        first, second = await one.begin(), await two.begin()
        await one.execute(text("UPDATE campaign_recipients SET state = 'submitted' "
                                "WHERE campaign_id = CAST(:c AS uuid) AND seq <= 30"), {"c": campaign_id})
        assert await store.fold_tallies(one, [campaign_id]) == 1
        await two.execute(text("UPDATE campaign_recipients SET state = 'submitted' "
                                "WHERE campaign_id = CAST(:c AS uuid) AND seq > 70"), {"c": campaign_id})
        assert await store.fold_tallies(two, [campaign_id]) == 0  # the first holds it: skipped, not waited for
        await first.commit()
        await second.commit()
    counts = await agree(db, campaign_id)
    assert counts == {("submitted", None): 54, ("submitted", "opted_out"): 6, ("queued", None): 36,
                      ("skipped", "opted_out"): 4}
    async with db.begin() as conn:
        assert await store.fold_tallies(conn, [campaign_id]) == 1
    assert await agree(db, campaign_id) == counts


async def _funnel(db: AsyncEngine, campaign_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        return await store.funnel_of(conn, campaign_id)
