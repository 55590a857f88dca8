"""The campaign expander: one launch job in, one record per contact out, a page at a time.

Consumes ``campaigns.commands`` (key: campaign id). An ``expand`` job reads one page of the campaign's
audience after its cursor (segment contacts by id, CSV rows by line, an earlier campaign's recipients by
position), writes the page's recipients (``queued``, or ``skipped`` with the reason a CSV row already has;
``ON CONFLICT DO NOTHING``, so a re-run page changes nothing), and emits one ``RecipientRecord`` per queued
contact to ``campaigns.recipients`` (keyed by contact) plus the job for the next page; the last page marks
the campaign expanded. A crash re-runs at most the page in hand, and every send keeps its deterministic
idempotency key, so nobody is sent twice.

Pages are generated as the campaign's number can send them, ``lead_s`` ahead: each job carries the time the
sends of the pages before it should end at the number's rate (its ``horizon``); a next page not needed before
``horizon - lead_s`` is held in the campaign's row (``paced_job``, ``paced_until``) and published by the
campaign scheduler when due. Expanding a 20,000-contact audience at launch made the campaign worker, the
projector and PostgreSQL take the cores for the first 6 s, and the dispatcher sent 600-900 a second of the
1,000 its number allows (``aerostic bench campaign``); paced, the stages beside it cost the same but spread out.
The horizon counts the number's full rate, a little faster than the dispatcher's margin lets it send, so the
lead can only grow. A ``requeue`` job hands still-queued recipients to the recipient
stage again (after a resume, or when the portfolio's tier has room); a ``CampaignHeld`` from the dispatcher
records why a recipient waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message
from redis.asyncio import Redis
from sqlalchemy import Row, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broker.runtime import Output
from campaigns import store
from campaigns.audience import RetargetAudience
from campaigns.states import RANK, WAITING_TIER, CampaignState, RecipientState
from contacts.segments import SegmentFilter
from contacts.segments import query as segment_query
from db.tables import campaign_audience_rows, campaign_recipients, campaigns, contacts
from schemas.campaigns import CAMPAIGN_COMMAND, CampaignHeld, CampaignJob, RecipientRecord
from schemas.catalogue import CAMPAIGN_EXPANDER_GROUP, CAMPAIGNS_COMMANDS, CAMPAIGNS_RECIPIENTS

log = logging.getLogger(__name__)

PAGE = 2000  # contacts per job at most (and per requeue job); each page costs a round trip through the broker
MIN_PAGE = 500  # an expand job's page is about a second of its number's sends, at least this: 6 s of 80 msg/s
WRITE_PAGE = text(  # one statement per page; a page handled again changes nothing
    "INSERT INTO campaign_recipients (campaign_id, contact, tenant_id, wa_id, seq, state, rank, reason) "
    "SELECT CAST(:c AS uuid), r.contact, CAST(:t AS uuid), r.wa_id, r.seq, r.state, r.rank, r.reason "
    "FROM unnest(CAST(:contacts AS text[]), CAST(:wa_ids AS text[]), CAST(:seqs AS integer[]), "
    "CAST(:states AS text[]), CAST(:ranks AS smallint[]), CAST(:reasons AS text[])) "
    "AS r(contact, wa_id, seq, state, rank, reason) ON CONFLICT DO NOTHING")
WAITING_FOR_TIER = "waiting_for_tier"
EXPANDING = frozenset({CampaignState.RUNNING.value, CampaignState.PAUSED.value})


class CampaignExpander:
    """The ``Processor`` of ``campaigns.commands``."""

    group_id = CAMPAIGN_EXPANDER_GROUP

    def __init__(self, engine: AsyncEngine, redis: Redis, *, prefix: str, page: int = PAGE,
                 lead_s: float = 2.0, on_held: Callable[[], None] | None = None) -> None:
        """``on_held()``: told once a batch that held a page is committed (the scheduler's ``expect``)."""
        self.engine = engine
        self.redis = redis
        self.page = page
        self.lead_s = lead_s
        self.on_held = on_held
        self._held_a_page = False
        self.topics = [CAMPAIGNS_COMMANDS.full_name(prefix)]
        self.jobs_topic = CAMPAIGNS_COMMANDS.full_name(prefix)
        self.recipients_topic = CAMPAIGNS_RECIPIENTS.full_name(prefix)

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        outputs: list[Output] = []
        commands = [CAMPAIGN_COMMAND.validate_json(msg.value() or b"") for msg in batch]
        async with self.engine.begin() as conn:
            touched: set[str] = set()
            for command in commands:
                if isinstance(command, CampaignHeld):
                    await self._held(conn, command)
                    touched.add(command.campaign_id)
                    continue
                campaign = (await conn.execute(select(campaigns).where(
                    campaigns.c.id == command.campaign_id, campaigns.c.tenant_id == command.tenant_id))).first()
                if campaign is None or campaign.state not in EXPANDING:
                    continue
                touched.add(campaign.id)
                if command.action == "expand":
                    outputs.extend(await self._expand(conn, campaign, command))
                else:
                    outputs.extend(await self._requeue(conn, campaign, command))
            await store.fold_tallies(conn, touched)
        held, self._held_a_page = self._held_a_page, False
        if held and self.on_held is not None:
            self.on_held()
        return outputs

    async def saved(self) -> None:
        """The pages' rows were written in ``process``: nothing more to save."""

    # --- expand ------------------------------------------------------------------------------------------

    async def _expand(self, conn: AsyncConnection, campaign: Row[Any], job: CampaignJob) -> list[Output]:
        audience = campaign.audience
        kind = audience.get("kind")
        rate = await store.number_rate(conn, campaign)
        size = min(self.page, max(MIN_PAGE, rate))
        if kind == "csv":
            rows = await self._csv_page(conn, campaign.id, job.cursor, size)
        elif kind == "retarget":
            rows = await self._retarget_page(conn, campaign, RetargetAudience.model_validate(audience), job.cursor,
                                             size)
        else:
            rows = await self._segment_page(conn, campaign, job.cursor, size)
        records: list[RecipientRecord] = []
        for seq, contact, wa_id, problem, columns in rows:
            if not problem:
                records.append(RecipientRecord(event_id=f"{campaign.id}:{contact}:expand", campaign_id=campaign.id,
                                               tenant_id=campaign.tenant_id, contact=contact, wa_id=wa_id, seq=seq,
                                               columns=columns))
        if rows:
            states = [RecipientState.SKIPPED if row[3] else RecipientState.QUEUED for row in rows]
            await conn.execute(WRITE_PAGE, {
                "c": campaign.id, "t": campaign.tenant_id, "contacts": [str(row[1]) for row in rows],
                "wa_ids": [row[2] for row in rows], "seqs": [row[0] for row in rows],
                "states": [state.value for state in states], "ranks": [RANK[state] for state in states],
                "reasons": [row[3] for row in rows]})
        outputs = [self._record(r) for r in records]
        log.info("campaign %s: %d of its audience after %d expanded (%d to send)", campaign.id, len(rows), job.cursor,
                 len(records))
        if len(rows) >= size:
            now = time.time()
            horizon = max(now, job.horizon) + len(records) / rate
            nxt = job.model_copy(update={"cursor": rows[-1][0], "event_id": f"{campaign.id}:expand:{rows[-1][0]}",
                                         "horizon": horizon})
            due = horizon - self.lead_s
            if due <= now:
                outputs.append(Output(self.jobs_topic, campaign.id.encode(), nxt.encode()))
            else:  # not needed yet: the campaign scheduler publishes it when due
                await conn.execute(update(campaigns).where(campaigns.c.id == campaign.id).values(
                    paced_until=datetime.fromtimestamp(due, UTC), paced_job=nxt.encode().decode()))
                self._held_a_page = True
        else:
            await conn.execute(update(campaigns).where(campaigns.c.id == campaign.id, campaigns.c.expanded_at.is_(None))
                               .values(expanded_at=datetime.now(UTC)))
            log.info("campaign %s expanded", campaign.id)
        return outputs

    async def _csv_page(self, conn: AsyncConnection, campaign_id: str, cursor: int, size: int
                        ) -> list[tuple[Any, ...]]:
        a = campaign_audience_rows.c
        rows = await conn.execute(select(a.line, a.wa_id, a.problem, a.columns).where(
            a.campaign_id == campaign_id, a.line > cursor).order_by(a.line).limit(size))
        return [(r.line, f"line:{r.line}" if r.problem or r.wa_id is None else r.wa_id, r.wa_id, r.problem,
                 r.columns or {}) for r in rows]

    async def _segment_page(self, conn: AsyncConnection, campaign: Row[Any], cursor: int, size: int
                            ) -> list[tuple[Any, ...]]:
        segment = SegmentFilter.model_validate(campaign.audience.get("filter") or {})
        # Opted-out contacts are kept here and skipped with their reason by the recipient stage.
        segment = segment.model_copy(update={"include_opted_out": True})
        rows = await conn.execute(segment_query(campaign.tenant_id, segment).where(contacts.c.id > cursor)
                                  .limit(size))
        return [(r.id, r.wa_id, r.wa_id, None, {}) for r in rows]

    async def _retarget_page(self, conn: AsyncConnection, campaign: Row[Any], audience: RetargetAudience,
                             cursor: int, size: int) -> list[tuple[Any, ...]]:
        r = campaign_recipients.c
        rows = await conn.execute(select(r.seq, r.wa_id).where(
            r.campaign_id == audience.campaign_id, r.tenant_id == campaign.tenant_id, r.state.in_(audience.wanted()),
            r.wa_id.is_not(None), r.seq > cursor).order_by(r.seq).limit(size))
        return [(row.seq, row.wa_id, row.wa_id, None, {}) for row in rows]

    # --- requeue and holds -------------------------------------------------------------------------------

    async def _requeue(self, conn: AsyncConnection, campaign: Row[Any], job: CampaignJob) -> list[Output]:
        if campaign.state != CampaignState.RUNNING:
            return []
        r = campaign_recipients.c
        size = min(self.page, job.limit) if job.limit else self.page
        query = select(r.contact, r.wa_id, r.seq).where(
            r.campaign_id == campaign.id, r.state == RecipientState.QUEUED.value, r.seq > job.cursor)
        if job.reason:
            query = query.where(r.reason == job.reason)
        rows = (await conn.execute(query.order_by(r.seq).limit(size))).all()
        if rows and job.reason:
            await conn.execute(update(campaign_recipients).where(
                r.campaign_id == campaign.id, r.contact.in_([row.contact for row in rows]),
                r.state == RecipientState.QUEUED.value).values(reason=None))
        columns = await self._columns(conn, campaign, [row.seq for row in rows])
        outputs = [self._record(RecipientRecord(
            event_id=f"{campaign.id}:{row.contact}:requeue:{job.event_id}", campaign_id=campaign.id,
            tenant_id=campaign.tenant_id, contact=row.contact, wa_id=row.wa_id, seq=row.seq,
            columns=columns.get(row.seq, {}), requeue=True)) for row in rows]
        left = None if job.limit is None else job.limit - len(rows)
        if len(rows) == size and (left is None or left > 0):
            nxt = job.model_copy(update={"cursor": rows[-1].seq, "limit": left,
                                         "event_id": f"{job.event_id}:{rows[-1].seq}"})
            outputs.append(Output(self.jobs_topic, campaign.id.encode(), nxt.encode()))
        return outputs

    async def _columns(self, conn: AsyncConnection, campaign: Row[Any], lines: list[int]) -> dict[int, dict[str, str]]:
        if campaign.audience.get("kind") != "csv" or not lines:
            return {}
        a = campaign_audience_rows.c
        rows = await conn.execute(select(a.line, a.columns).where(a.campaign_id == campaign.id, a.line.in_(lines)))
        return {row.line: row.columns or {} for row in rows}

    async def _held(self, conn: AsyncConnection, held: CampaignHeld) -> None:
        r = campaign_recipients.c
        await conn.execute(update(campaign_recipients).where(
            r.campaign_id == held.campaign_id, r.tenant_id == held.tenant_id, r.contact == held.contact,
            r.state == RecipientState.QUEUED.value).values(reason=held.reason, updated_at=held.at))
        if held.reason == WAITING_TIER:
            await conn.execute(update(campaigns).where(
                campaigns.c.id == held.campaign_id, campaigns.c.tenant_id == held.tenant_id,
                campaigns.c.state == CampaignState.RUNNING.value).values(state_reason=WAITING_FOR_TIER))

    def _record(self, record: RecipientRecord) -> Output:
        return Output(self.recipients_topic, f"{record.tenant_id}:{record.contact}".encode(), record.encode())
