"""The campaign funnel: what became of each campaign message, from the status topics, into its recipient.

Consumes ``outbound.results`` (accepted → ``submitted``, or ``failed`` with the code), ``wa.statuses``
(``sent``, ``delivered``, ``read``, ``failed``; a campaign message is recognised by its idempotency key,
which Meta echoes in ``biz_opaque_callback_data``), ``wa.inbound`` (a message from a recipient within 72 h
of a campaign's send: ``replied``) and ``wa.account.events`` (a template paused, disabled or recategorised by
Meta pauses the running campaigns that use it, with the reason). A recipient only moves up its ladder
(``campaigns.states.advances``, applied in SQL), so any delivery order ends in the same state; the funnel is
counted from the recipients' states, so the two always agree. A batch's results and statuses are written with
one ``UPDATE … FROM unnest(…)`` per round (``rounds``: the n-th fact of each recipient in the n-th), so a busy
campaign costs a statement or two per batch, not one per status. Touched campaigns publish their progress to
``campaigns.progress`` (at most once a second each while busy; on every small batch and when they complete).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Message
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broker.runtime import Output
from campaigns import store
from campaigns.states import FAILED_OVERRIDES_BELOW, RANK, REPLY_WINDOW_S, CampaignState, RecipientState
from db.tables import campaigns, phone_numbers
from schemas.campaigns import CampaignProgress, parse_key
from schemas.catalogue import (
    ACCOUNT_EVENTS,
    CAMPAIGN_FUNNEL_GROUP,
    CAMPAIGNS_PROGRESS,
    INBOUND,
    OUTBOUND_RESULTS,
    STATUSES,
)
from schemas.events import AccountEvent, InboundMessage, StatusUpdate
from schemas.outbound import OutboundResult

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # while busy; a small batch (traffic is low, or a campaign's tail) always publishes
QUIET_BATCH = 50
STATUS_STATES = {"sent": RecipientState.SENT, "delivered": RecipientState.DELIVERED, "read": RecipientState.READ,
                 "played": RecipientState.READ, "failed": RecipientState.FAILED}
TIMESTAMPS = {RecipientState.SUBMITTED: "submitted_at", RecipientState.SENT: "sent_at",
              RecipientState.DELIVERED: "delivered_at", RecipientState.READ: "read_at",
              RecipientState.REPLIED: "replied_at", RecipientState.FAILED: "failed_at"}
PAUSING_EVENTS = {"PAUSED", "DISABLED"}

_MOVES = "r.state NOT IN ('failed', 'skipped') AND r.rank < v.below"  # campaigns.states.advances, in SQL
# One statement for a round of the batch's facts (at most one per recipient): the state's timestamp, the wamid and
# message id (first wins), ambiguity, and the move up the ladder where ``advances`` allows it. Every SET expression
# reads the row as it was, so the facts land whether or not the state moves.
ADVANCE = text(
    "UPDATE campaign_recipients r SET "  # noqa: S608 - the columns are TIMESTAMPS' own names
    + "".join(f"{column} = CASE WHEN v.state = '{state.value}' THEN COALESCE(r.{column}, v.at) ELSE r.{column} END, "
              for state, column in TIMESTAMPS.items())
    + "wamid = COALESCE(r.wamid, v.wamid), message_id = COALESCE(r.message_id, v.mid), "
    "ambiguous = r.ambiguous OR v.amb, "
    f"state = CASE WHEN {_MOVES} THEN v.state ELSE r.state END, "
    f"rank = CASE WHEN {_MOVES} THEN v.rank ELSE r.rank END, "
    f"error_code = CASE WHEN {_MOVES} THEN COALESCE(v.code, r.error_code) ELSE r.error_code END, "
    f"error_title = CASE WHEN {_MOVES} THEN COALESCE(v.title, r.error_title) ELSE r.error_title END, "
    f"updated_at = CASE WHEN {_MOVES} THEN now() ELSE r.updated_at END "
    "FROM unnest(CAST(:c AS uuid[]), CAST(:k AS text[]), CAST(:state AS text[]), CAST(:rank AS smallint[]), "
    "CAST(:below AS smallint[]), CAST(:code AS integer[]), CAST(:title AS text[]), CAST(:at AS timestamptz[]), "
    "CAST(:wamid AS text[]), CAST(:mid AS text[]), CAST(:amb AS boolean[])) "
    "AS v(c, k, state, rank, below, code, title, at, wamid, mid, amb) "
    "WHERE r.campaign_id = v.c AND r.contact = v.k")
ADVANCE_FIELDS = ("c", "k", "state", "rank", "below", "code", "title", "at", "wamid", "mid", "amb")
REPLY = text(
    "UPDATE campaign_recipients r SET state = 'replied', rank = :rank, replied_at = COALESCE(r.replied_at, :at), "
    "updated_at = now() FROM (SELECT campaign_id, contact FROM campaign_recipients "
    "  WHERE tenant_id = CAST(:t AS uuid) AND wa_id = :w AND submitted_at > :since AND submitted_at < :until "
    "  ORDER BY submitted_at DESC LIMIT 1) last "
    "WHERE r.campaign_id = last.campaign_id AND r.contact = last.contact "
    "AND r.state NOT IN ('failed', 'skipped') AND r.rank < :rank RETURNING r.campaign_id")


def rounds(moves: Sequence[tuple[Any, ...]]) -> list[dict[str, list[Any]]]:
    """``ADVANCE``'s parameters: the n-th fact of each recipient goes in the n-th round, so a round names each
    recipient once (one UPDATE may change a row once) and each recipient's facts apply in the batch's order."""
    seen: dict[tuple[Any, Any], int] = {}
    split: list[list[tuple[Any, ...]]] = []
    for move in moves:
        n = seen.get(move[:2], 0)
        seen[move[:2]] = n + 1
        if n == len(split):
            split.append([])
        split[n].append(move)
    return [dict(zip(ADVANCE_FIELDS, (list(column) for column in zip(*part, strict=True)), strict=True))
            for part in split]


class CampaignFunnel:
    """The ``Processor`` of the status topics for campaigns."""

    group_id = CAMPAIGN_FUNNEL_GROUP

    def __init__(self, engine: AsyncEngine, redis: Redis, *, prefix: str) -> None:
        self.engine = engine
        self.redis = redis
        self.prefix = prefix
        self.names = {spec.full_name(prefix): spec.name for spec in (OUTBOUND_RESULTS, STATUSES, INBOUND,
                                                                     ACCOUNT_EVENTS)}
        self.topics = list(self.names)
        self.progress_topic = CAMPAIGNS_PROGRESS.full_name(prefix)
        self._published: dict[str, float] = {}

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        moves: list[tuple[Any, ...]] = []  # ADVANCE_FIELDS of each fact, in the batch's order
        replies: list[InboundMessage] = []
        templates: list[AccountEvent] = []
        touched: set[str] = set()
        for msg in batch:
            name, raw = self.names.get(msg.topic() or ""), msg.value() or b""
            if name == OUTBOUND_RESULTS.name and b'"campaign_id"' in raw:
                self._result(OutboundResult.decode(raw), moves, touched)
            elif name == STATUSES.name and b'"campaign:' in raw:
                self._status(StatusUpdate.decode(raw), moves, touched)
            elif name == INBOUND.name:
                replies.append(InboundMessage.decode(raw))
            elif name == ACCOUNT_EVENTS.name and b"template" in raw:
                templates.append(AccountEvent.decode(raw))
        async with self.engine.begin() as conn:
            for round_ in rounds(moves):
                await conn.execute(ADVANCE, round_)
            for message in replies:
                touched.update(await self._reply(conn, message))
            for event in templates:
                touched.update(await self._template_event(conn, event))
            await store.fold_tallies(conn, touched)
            return await self._progress(conn, touched, quiet=len(batch) < QUIET_BATCH)

    async def saved(self) -> None:
        """The recipients were written in ``process``: nothing more to save."""

    def _result(self, result: OutboundResult, moves: list[tuple[Any, ...]], touched: set[str]) -> None:
        found = parse_key(result.idempotency_key)
        if found is None:
            return
        state = RecipientState.SUBMITTED if result.outcome == "accepted" else RecipientState.FAILED
        self._add(found, state, result.completed_at, moves, wamid=result.wamid if not result.local else None,
                  mid=result.message_id, amb=result.ambiguous, code=result.error_code, title=result.error_title)
        touched.add(found[0])

    def _status(self, status: StatusUpdate, moves: list[tuple[Any, ...]], touched: set[str]) -> None:
        found = parse_key(status.biz_opaque_callback_data)
        state = STATUS_STATES.get(status.status)
        if found is None or state is None:
            return
        local = status.wamid.startswith("local.")
        self._add(found, state, status.timestamp, moves, wamid=None if local else status.wamid, mid=None,
                  amb=False, code=status.error_code, title=status.error_title)
        touched.add(found[0])

    @staticmethod
    def _add(found: tuple[str, str], state: RecipientState, at: datetime, moves: list[tuple[Any, ...]], *,
             wamid: str | None, mid: str | None, amb: bool, code: int | None, title: str | None) -> None:
        failed = state is RecipientState.FAILED
        moves.append((*found, state.value, RANK[state], FAILED_OVERRIDES_BELOW if failed else RANK[state],
                      code if failed else None, (title or "")[:300] or None if failed else None, at, wamid, mid, amb))

    async def _reply(self, conn: AsyncConnection, message: InboundMessage) -> set[str]:
        if message.tenant_id is None:
            return set()
        since = datetime.fromtimestamp(message.timestamp.timestamp() - REPLY_WINDOW_S, UTC)
        # Meta's timestamps are whole seconds: a reply stamped 10:00:00 was written before 10:00:01, perhaps
        # after a campaign message submitted at 10:00:00.7.
        until = message.timestamp + timedelta(seconds=1)
        rows = await conn.execute(REPLY, {"t": message.tenant_id, "w": message.wa_id, "at": message.timestamp,
                                          "until": until, "since": since, "rank": RANK[RecipientState.REPLIED]})
        return {str(row[0]) for row in rows}

    async def _template_event(self, conn: AsyncConnection, event: AccountEvent) -> set[str]:
        """Meta paused, disabled or recategorised a template: pause its running and scheduled campaigns."""
        value = event.payload.get("value") or {}
        field = event.field
        if event.tenant_id is None or not isinstance(value, dict):
            return set()
        name, language = value.get("message_template_name"), value.get("message_template_language")
        if field == "message_template_status_update" and str(value.get("event", "")).upper() in PAUSING_EVENTS:
            title = (value.get("other_info") or {}).get("title") if isinstance(value.get("other_info"), dict) else None
            reason = f"template {name} ({language}) {str(value['event']).lower()} by Meta" + (f": {title}" if title
                                                                                              else "")
        elif field == "template_category_update" and value.get("new_category") and value.get("previous_category"):
            reason = f"template {name} ({language}) recategorised by Meta to {value['new_category']}"
        else:
            return set()
        on = phone_numbers.c.phone_number_id == campaigns.c.phone_number_id
        query = select(campaigns.c.id).join(phone_numbers, on).where(
            campaigns.c.tenant_id == event.tenant_id, phone_numbers.c.waba_id == event.waba_id,
            campaigns.c.state.in_([CampaignState.RUNNING.value, CampaignState.SCHEDULED.value]))
        if name:
            query = query.where(campaigns.c.template_name == name)
        if language:
            query = query.where(campaigns.c.template_language == language)
        paused = set()
        for (campaign_id,) in await conn.execute(query):
            if await store.set_state(conn, self.redis, campaign_id, CampaignState.PAUSED, reason=reason,
                                     only_from=frozenset({CampaignState.RUNNING, CampaignState.SCHEDULED})):
                log.warning("campaign %s paused: %s", campaign_id, reason)
                paused.add(str(campaign_id))
                self._published.pop(str(campaign_id), None)
        return paused

    async def _progress(self, conn: AsyncConnection, touched: set[str], *, quiet: bool) -> list[Output]:
        outputs: list[Output] = []
        now = time.monotonic()
        for campaign_id in sorted(touched):
            completed = await store.complete_if_done(conn, self.redis, campaign_id)
            if not (completed or quiet) and now - self._published.get(campaign_id, 0.0) < PROGRESS_EVERY_S:
                continue
            row = (await conn.execute(select(campaigns.c.tenant_id, campaigns.c.state, campaigns.c.state_reason)
                                      .where(campaigns.c.id == campaign_id))).first()
            if row is None:
                continue
            self._published[campaign_id] = now
            progress = CampaignProgress(event_id=f"{campaign_id}:progress:{time.time():.3f}", campaign_id=campaign_id,
                                        tenant_id=row.tenant_id, state=row.state, state_reason=row.state_reason,
                                        funnel=await store.funnel_of(conn, campaign_id), at=datetime.now(UTC))
            outputs.append(Output(self.progress_topic, campaign_id.encode(), progress.encode()))
        return outputs
