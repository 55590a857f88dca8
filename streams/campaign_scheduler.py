"""Starts scheduled campaigns when their time comes, completes those with nobody left to send, and hands
tier-held recipients back when the portfolio's rolling 24-hour budget has room again.

A due campaign is marked ``running`` (committed) before its expand job is published, so the expander reads
it running; a job that cannot be published puts it back to ``scheduled`` for the next tick. A campaign
waiting for the tier (``state_reason`` ``waiting_for_tier``) gets a ``requeue`` job limited to the free
seats; recipients that find the budget full again are held again (the dispatcher reports them). A launched
campaign not yet expanded whose recipients have not grown for ``expand_grace_s`` (its job lost or ignored) gets
its expand job again from its last written position, with the expander's own event id: a re-run page changes
nothing. A page the expander held until the campaign's sends need it (``paced_until``) is published when due; the
loop wakes for it, not only once a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from redis.asyncio import Redis
from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.producer import AsyncProducer, DeliveryError
from campaigns import store
from campaigns.states import WAITING_TIER, CampaignState, RecipientState
from config import redis_keys
from db.tables import campaign_recipients, campaigns, phone_numbers, whatsapp_accounts
from schemas.campaigns import CampaignJob, CampaignProgress
from schemas.catalogue import CAMPAIGNS_COMMANDS, CAMPAIGNS_PROGRESS
from streams.campaign_expander import EXPANDING, WAITING_FOR_TIER

log = logging.getLogger(__name__)

TIER_WINDOW_S = 24 * 3600
DUE_PER_TICK = 100


class CampaignScheduler:
    """One loop: due campaigns, then tier-held ones (``run`` is supervised by ``broker.tasks.keep_running``)."""

    def __init__(self, engine: AsyncEngine, redis: Redis, producer: AsyncProducer, *, prefix: str,
                 interval_s: float = 1.0, tier_recheck_s: float = 30.0, expand_grace_s: float = 15.0) -> None:
        self.engine = engine
        self.redis = redis
        self.producer = producer
        self.topic = CAMPAIGNS_COMMANDS.full_name(prefix)
        self.progress_topic = CAMPAIGNS_PROGRESS.full_name(prefix)
        self.interval_s = interval_s
        self.tier_recheck_s = tier_recheck_s
        self._tier_checked = 0.0
        self.expand_grace_s = expand_grace_s
        self._expanding: dict[str, tuple[int, float]] = {}  # campaign -> (last written position, since when)
        self._wake = asyncio.Event()

    def expect(self) -> None:
        """This process's expander held a page (committed): read the held pages again, to wake when it is due."""
        self._wake.set()

    async def run(self) -> None:
        next_tick = 0.0
        while True:
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.interval_s
                await self.start_due()
                await self.complete_finished()
                await self.rekick_stalled()
                if time.monotonic() - self._tier_checked >= self.tier_recheck_s:
                    self._tier_checked = time.monotonic()
                    await self.release_tier_holds()
            self._wake.clear()  # before the read: a page held after it wakes the loop
            paced_in = await self.release_paced()
            wait = next_tick - time.monotonic()
            if paced_in is not None:
                wait = min(wait, paced_in)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, wait))

    async def release_paced(self) -> float | None:
        """Publish the held pages that are due; the seconds until the next one is (None: none is held).

        A page is taken off its campaign (committed) before it is published; one that cannot be published is put
        back, due at once, for the next round."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(select(campaigns.c.id, campaigns.c.state, campaigns.c.paced_job).where(
                campaigns.c.paced_until <= datetime.now(UTC)).order_by(campaigns.c.paced_until)
                .limit(DUE_PER_TICK).with_for_update(skip_locked=True))).all()
            if rows:
                await conn.execute(update(campaigns).where(campaigns.c.id.in_([row.id for row in rows]))
                                   .values(paced_until=None, paced_job=None))
            following = await conn.scalar(select(func.min(campaigns.c.paced_until)).where(
                campaigns.c.paced_until.is_not(None)))
        for row in rows:
            if row.state not in EXPANDING:  # cancelled or finished meanwhile: no more pages
                continue
            try:
                await self.producer.send(self.topic, row.paced_job.encode(), row.id.encode())
            except DeliveryError:
                async with self.engine.begin() as conn:
                    await conn.execute(update(campaigns).where(
                        campaigns.c.id == row.id, campaigns.c.paced_job.is_(None))
                        .values(paced_until=datetime.now(UTC), paced_job=row.paced_job))
                raise
        if following is None:
            return None
        return max(0.0, (following - datetime.now(UTC)).total_seconds())

    async def start_due(self) -> int:
        started = 0
        async with self.engine.begin() as conn:
            rows = (await conn.execute(select(campaigns.c.id, campaigns.c.tenant_id).where(
                campaigns.c.state == CampaignState.SCHEDULED.value, campaigns.c.send_at <= datetime.now(UTC))
                .order_by(campaigns.c.send_at).limit(DUE_PER_TICK).with_for_update(skip_locked=True))).all()
            for row in rows:
                await store.set_state(conn, self.redis, row.id, CampaignState.RUNNING,
                                      only_from=frozenset({CampaignState.SCHEDULED}), launched_at=datetime.now(UTC))
        for row in rows:  # committed first: the expander reads the campaign running
            job = CampaignJob(event_id=f"{row.id}:expand:0", campaign_id=row.id, tenant_id=row.tenant_id)
            try:
                await self.producer.send(self.topic, job.encode(), row.id.encode())
            except DeliveryError:
                async with self.engine.begin() as conn:  # scheduled again: the next tick retries it
                    await store.set_state(conn, self.redis, row.id, CampaignState.SCHEDULED,
                                          only_from=frozenset({CampaignState.RUNNING}))
                raise
            log.info("scheduled campaign %s started", row.id)
            started += 1
        return started

    async def rekick_stalled(self) -> int:
        """Publish again the expand job of each launched, unexpanded campaign that made no progress for the grace
        period (from its highest written position, which ends a whole page: pages are written atomically); one whose
        next page is held until due is not stalled."""
        r = campaign_recipients.c
        now = time.monotonic()
        since = datetime.now(UTC).timestamp() - self.expand_grace_s
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(campaigns.c.id, campaigns.c.tenant_id,
                       select(func.coalesce(func.max(r.seq), 0)).where(r.campaign_id == campaigns.c.id)
                       .scalar_subquery().label("cursor"))
                .where(campaigns.c.state.in_([CampaignState.RUNNING.value, CampaignState.PAUSED.value]),
                       campaigns.c.expanded_at.is_(None), campaigns.c.paced_until.is_(None),
                       campaigns.c.launched_at.is_not(None),
                       campaigns.c.launched_at <= datetime.fromtimestamp(since, UTC))
                .order_by(campaigns.c.launched_at).limit(DUE_PER_TICK))).all()
        seen = {row.id for row in rows}
        self._expanding = {k: v for k, v in self._expanding.items() if k in seen}
        kicked = 0
        for row in rows:
            cursor, first = self._expanding.get(row.id, (row.cursor, now))
            if cursor != row.cursor or row.id not in self._expanding:
                self._expanding[row.id] = (row.cursor, now)
                continue
            if now - first < self.expand_grace_s:
                continue
            job = CampaignJob(event_id=f"{row.id}:expand:{row.cursor}", campaign_id=row.id, tenant_id=row.tenant_id,
                              cursor=row.cursor)
            await self.producer.send(self.topic, job.encode(), row.id.encode())
            self._expanding[row.id] = (row.cursor, now)
            log.warning("campaign %s: no expansion progress for %.0fs; its expand job published again from %d",
                        row.id, self.expand_grace_s, row.cursor)
            kicked += 1
        return kicked

    async def complete_finished(self) -> int:
        """Complete running campaigns that are expanded and have nobody queued (their last recipients may have
        been skipped, which no status reports), and publish their final progress."""
        r = campaign_recipients.c
        done = 0
        async with self.engine.begin() as conn:
            ids = (await conn.execute(select(campaigns.c.id).where(
                campaigns.c.state == CampaignState.RUNNING.value, campaigns.c.expanded_at.is_not(None),
                ~exists().where(r.campaign_id == campaigns.c.id, r.state == RecipientState.QUEUED.value))
                .limit(DUE_PER_TICK))).scalars().all()
            for campaign_id in ids:
                if await store.complete_if_done(conn, self.redis, campaign_id):
                    row = await store.load(conn, campaign_id)
                    assert row is not None
                    progress = CampaignProgress(
                        event_id=f"{campaign_id}:progress:completed", campaign_id=campaign_id,
                        tenant_id=row.tenant_id, state=row.state, state_reason=row.state_reason,
                        funnel=await store.funnel_of(conn, campaign_id), at=datetime.now(UTC))
                    await self.producer.send(self.progress_topic, progress.encode(), campaign_id.encode())
                    done += 1
        return done

    async def release_tier_holds(self) -> int:
        released = 0
        async with self.engine.begin() as conn:
            rows = (await conn.execute(
                select(campaigns.c.id, campaigns.c.tenant_id, whatsapp_accounts.c.business_id,
                       whatsapp_accounts.c.waba_id, whatsapp_accounts.c.tier_limit)
                .join(phone_numbers, phone_numbers.c.phone_number_id == campaigns.c.phone_number_id)
                .join(whatsapp_accounts, whatsapp_accounts.c.waba_id == phone_numbers.c.waba_id)
                .where(campaigns.c.state == CampaignState.RUNNING.value,
                       campaigns.c.state_reason == WAITING_FOR_TIER))).all()
            for row in rows:
                key = redis_keys.portfolio_recipients(row.business_id or row.waba_id)
                used = int(await self.redis.zcount(key, time.time() - TIER_WINDOW_S, "+inf"))
                free = None if row.tier_limit is None else row.tier_limit - used
                if free is not None and free <= 0:
                    continue
                job = CampaignJob(event_id=f"{row.id}:tier:{time.time():.3f}", campaign_id=row.id,
                                  tenant_id=row.tenant_id, action="requeue", reason=WAITING_TIER, limit=free)
                await self.producer.send(self.topic, job.encode(), row.id.encode())
                await conn.execute(update(campaigns).where(campaigns.c.id == row.id,
                                                           campaigns.c.state_reason == WAITING_FOR_TIER)
                                   .values(state_reason=None))
                released += 1
        return released
