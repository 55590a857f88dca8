"""The dashboards' figures, aggregated by PostgreSQL from the projections (every query names the tenant).

Why the projections and not a stream aggregate: ``messages``, ``conversation_events``, ``campaign_recipients``
already hold every fact the dashboards count, each row tenant-scoped, so any range (up to
``dashboard_range.MAX_DAYS``) is one bounded ``WHERE tenant_id = … AND time in [start, end)`` over an index
(migration 0021), with exact medians (``percentile_cont``) that a pre-aggregated stream could not merge
across buckets. Measured on 100,000 messages of one tenant over 30 days (README, "Dashboards"; a loaded
2-core machine): a day's figures take under 0.1 s, 7 days about 0.5 s, 30 days about 2.5 s, most of it finding
the episodes by index lookups; nothing here needed a second copy of the facts.

Buckets are the tenant's local hours or days: ``date_trunc(unit, time, tenant_zone)``.

Definitions (also in the page's help text):

- **volume**: messages by the time they were written (inbound: Meta's timestamp; outbound: queued).
- **sent** = outbound messages Meta accepted (status accepted, sent, delivered, read or played);
  **delivery rate** = delivered (or read, played) / sent; **read rate** = read (or played) / delivered.
- **episode**: from a customer's first message after the conversation was last closed (or ever) to the next
  ``closed``. Episodes are counted when they start in the range.
- **first response time**: the episode's start to the first reply by an agent (``user:…``), the AI (``ai:…``)
  or an automation rule (``automation:…``) queued before the episode closed; campaign and API sends don't count.
- **resolution time**: the episode's start to its ``closed``.
- **per agent**: episodes the agent replied in; their first response is measured from the hand-off to a
  person when it came before their reply, else from the episode's start.
- **AI deflection**: episodes answered by the AI or an automation and never handed to a person, against
  episodes handed over (state ``queued`` or ``agent``).
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.dashboard_range import DashboardRange
from campaigns import store
from config import redis_keys

MAX_FAILURE_CODES = 20
MAX_AGENTS = 50
MAX_CAMPAIGNS = 20
MAX_ACCOUNTS = 50
TIER_WINDOW_S = 24 * 3600  # the dispatcher's rolling window of unique template recipients (dispatcher.ratelimit)

ACCEPTED = ("accepted", "sent", "delivered", "read", "played")
DELIVERED = ("delivered", "read", "played")
READ = ("read", "played")

AUTHOR = """CASE WHEN requested_by LIKE 'user:%' THEN 'agent' WHEN requested_by LIKE 'ai:%' THEN 'ai'
     WHEN requested_by LIKE 'automation:%' THEN 'automation' WHEN requested_by LIKE 'campaign:%' THEN 'campaign'
     ELSE 'api' END"""
REPLY = "(o.requested_by LIKE 'user:%' OR o.requested_by LIKE 'ai:%' OR o.requested_by LIKE 'automation:%')"

VOLUME = text("""
SELECT date_trunc(:unit, sent_at, :tz) AS bucket, direction, status, count(*) AS n
FROM messages
WHERE tenant_id = :tenant AND sent_at >= :start AND sent_at < :end
GROUP BY 1, 2, 3
""")

AUTHORS = text(f"""
SELECT {AUTHOR} AS author, count(*) AS n
FROM messages
WHERE tenant_id = :tenant AND direction = 'outbound' AND sent_at >= :start AND sent_at < :end
GROUP BY 1
""")  # noqa: S608 - this module's constant fragments only

FAILURES = text("""
SELECT error_code, max(error_title) AS title, count(*) AS n
FROM messages
WHERE tenant_id = :tenant AND direction = 'outbound' AND status = 'failed' AND sent_at >= :start AND sent_at < :end
GROUP BY error_code
ORDER BY n DESC, error_code
LIMIT :limit
""")

# A conversation's state changes, looked up through ix_conversation_events_states (migration 0021).
_CHANGE = """FROM conversation_events c
    WHERE c.tenant_id = :tenant AND c.conversation_key = {key} AND c.kind = 'conversation_changed'
      AND (c.payload ->> 'state') {state}"""

# An inbound message starts an episode when the conversation's previous inbound message (in the range: by a
# window; before it: one index lookup per conversation) is older than a close at or before it, or there is none.
EPISODES = f"""
WITH inbound AS (
  SELECT i.conversation_key, i.sent_at,
         lag(i.sent_at) OVER (PARTITION BY i.conversation_key ORDER BY i.sent_at, i.id) AS prev_at
  FROM messages i
  WHERE i.tenant_id = :tenant AND i.direction = 'inbound' AND i.sent_at >= :start AND i.sent_at < :end
),
candidates AS (
  SELECT conversation_key, sent_at, prev_at FROM inbound WHERE prev_at IS NOT NULL
  UNION ALL
  SELECT f.conversation_key, f.sent_at, before.at
  FROM inbound f
  LEFT JOIN LATERAL (
    SELECT max(p.sent_at) AS at FROM messages p
    WHERE p.tenant_id = :tenant AND p.conversation_key = f.conversation_key AND p.direction = 'inbound'
      AND p.sent_at < :start
  ) before ON true
  WHERE f.prev_at IS NULL
),
starts AS (
  SELECT n.conversation_key, n.sent_at AS started_at
  FROM candidates n
  WHERE n.prev_at IS NULL OR EXISTS (
    SELECT 1 {_CHANGE.format(key="n.conversation_key", state="= 'closed'")}
      AND c.at >= n.prev_at AND c.at <= n.sent_at)
),
episodes AS (
  SELECT s.conversation_key, s.started_at, cl.at AS closed_at, ho.at AS handed_at, fr.at AS first_reply_at,
         fr.bot AS bot_replied
  FROM starts s
  LEFT JOIN LATERAL (
    SELECT min(c.at) AS at {_CHANGE.format(key="s.conversation_key", state="= 'closed'")} AND c.at > s.started_at
  ) cl ON true
  LEFT JOIN LATERAL (
    SELECT min(c.at) AS at {_CHANGE.format(key="s.conversation_key", state="IN ('queued', 'agent')")}
      AND c.at >= s.started_at AND (cl.at IS NULL OR c.at < cl.at)
  ) ho ON true
  LEFT JOIN LATERAL (
    SELECT min(o.sent_at) AS at,
           coalesce(bool_or(o.requested_by LIKE 'ai:%' OR o.requested_by LIKE 'automation:%'), false) AS bot
    FROM messages o
    WHERE o.tenant_id = :tenant AND o.conversation_key = s.conversation_key AND o.direction = 'outbound'
      AND o.sent_at >= s.started_at AND (cl.at IS NULL OR o.sent_at <= cl.at) AND {REPLY}
  ) fr ON true
)
"""  # noqa: S608 - this module's constant fragments only

SECONDS = "extract(epoch FROM {0})"

# The episodes are found once (a CTE used twice is materialised) for both the overall and the per-agent figures.
RESPONSES = text(EPISODES + f"""
, overall AS (
  SELECT count(*) AS episodes,
         count(first_reply_at) AS answered,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY {SECONDS.format("first_reply_at - started_at")}) AS frt_p50,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY {SECONDS.format("first_reply_at - started_at")}) AS frt_p90,
         count(closed_at) AS resolved,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY {SECONDS.format("closed_at - started_at")}) AS res_p50,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY {SECONDS.format("closed_at - started_at")}) AS res_p90,
         count(*) FILTER (WHERE handed_at IS NOT NULL) AS handed_over,
         count(*) FILTER (WHERE handed_at IS NULL AND bot_replied) AS bot_handled,
         count(*) FILTER (WHERE handed_at IS NULL AND bot_replied AND closed_at IS NOT NULL) AS bot_resolved
  FROM episodes
), replies AS (
  SELECT e.conversation_key, e.started_at, e.closed_at, e.handed_at, o.requested_by, min(o.sent_at) AS first_at
  FROM episodes e
  JOIN messages o ON o.tenant_id = :tenant AND o.conversation_key = e.conversation_key
    AND o.direction = 'outbound' AND o.requested_by LIKE 'user:%'
    AND o.sent_at >= e.started_at AND (e.closed_at IS NULL OR o.sent_at <= e.closed_at)
  GROUP BY 1, 2, 3, 4, 5
), timed AS (
  SELECT substr(requested_by, 6) AS user_id, closed_at - started_at AS resolution,
         first_at - CASE WHEN handed_at IS NOT NULL AND handed_at <= first_at THEN handed_at ELSE started_at END
           AS first_response
  FROM replies
), per_agent AS (
  SELECT t.user_id, coalesce(a.display_name, u.email) AS name, count(*) AS handled,
         count(t.resolution) AS resolved,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY {SECONDS.format("t.first_response")}) AS frt_p50,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY {SECONDS.format("t.resolution")}) AS res_p50
  FROM timed t
  LEFT JOIN users u ON u.tenant_id = :tenant AND u.id::text = t.user_id
  LEFT JOIN agents a ON a.tenant_id = :tenant AND a.user_id::text = t.user_id
  GROUP BY t.user_id, a.display_name, u.email
  ORDER BY handled DESC, t.user_id
  LIMIT :limit
)
SELECT (SELECT row_to_json(o) FROM overall o)::text AS overall,
       (SELECT coalesce(json_agg(p ORDER BY p.handled DESC, p.user_id), '[]') FROM per_agent p)::text AS agents
""")  # noqa: S608 - this module's constant fragments only

AI_OUTCOMES = text("""
SELECT payload ->> 'outcome' AS outcome, (payload ->> 'applied')::boolean AS applied, count(*) AS n
FROM conversation_events
WHERE tenant_id = :tenant AND kind = 'ai_outcome' AND at >= :start AND at < :end
GROUP BY 1, 2
""")

CAMPAIGNS = text("""
SELECT id::text AS id, name, state, launched_at, finished_at
FROM campaigns
WHERE tenant_id = :tenant AND launched_at IS NOT NULL AND launched_at < :end
  AND (finished_at IS NULL OR finished_at >= :start)
ORDER BY launched_at DESC, id
LIMIT :limit
""")

ACCOUNTS = text("""
SELECT waba_id, name, business_id, tier_limit, status
FROM whatsapp_accounts
WHERE tenant_id = :tenant AND status <> 'disconnected'
ORDER BY waba_id
LIMIT :limit
""")


def _params(tenant_id: str, rng: DashboardRange, **extra: Any) -> dict[str, Any]:
    return {"tenant": tenant_id, "start": rng.start, "end": rng.end, **extra}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


async def volume(conn: AsyncConnection, tenant_id: str, rng: DashboardRange) -> dict[str, Any]:
    """Messages in and out per bucket, outbound delivery per bucket, the totals and rates."""
    starts = rng.buckets()
    series = {name: [0] * len(starts) for name in ("inbound", "outbound", "delivered", "read", "failed")}
    result = await conn.execute(VOLUME, _params(tenant_id, rng, unit=rng.bucket, tz=rng.timezone))
    sent = 0
    for bucket, direction, status, n in result:
        at = rng.bucket_of(starts, bucket)
        if direction == "inbound":
            series["inbound"][at] += n
            continue
        series["outbound"][at] += n
        sent += n if status in ACCEPTED else 0
        for name, statuses in (("delivered", DELIVERED), ("read", READ), ("failed", ("failed",))):
            if status in statuses:
                series[name][at] += n
    totals = {name: sum(values) for name, values in series.items()}
    authors = {row.author: int(row.n) for row in await conn.execute(AUTHORS, _params(tenant_id, rng))}
    return {
        "buckets": [{"start": start, **{name: values[i] for name, values in series.items()}}
                    for i, start in enumerate(starts)],
        "totals": {**totals, "sent": sent,
                   "delivery_rate": _rate(totals["delivered"], sent), "read_rate": _rate(totals["read"],
                                                                                         totals["delivered"])},
        "outbound_by_author": {name: authors.get(name, 0) for name in ("agent", "ai", "automation", "campaign",
                                                                        "api")},
    }


async def failures(conn: AsyncConnection, tenant_id: str, rng: DashboardRange) -> list[dict[str, Any]]:
    """Failed outbound messages by Meta's (or the dispatcher's) error code, most frequent first."""
    rows = await conn.execute(FAILURES, _params(tenant_id, rng, limit=MAX_FAILURE_CODES))
    return [{"code": row.error_code, "title": row.title, "count": int(row.n)} for row in rows]


async def responses(conn: AsyncConnection, tenant_id: str, rng: DashboardRange) -> dict[str, Any]:
    """First response and resolution times of the episodes started in the range, the AI's deflection, and per
    agent: episodes replied in, resolved, median first response and resolution."""
    found = (await conn.execute(RESPONSES, _params(tenant_id, rng, limit=MAX_AGENTS))).one()
    row, agents = json.loads(found.overall), json.loads(found.agents)
    bot, handed = int(row["bot_handled"]), int(row["handed_over"])
    return {
        "episodes": int(row["episodes"]), "answered": int(row["answered"]), "resolved": int(row["resolved"]),
        "first_response_s": {"median": _seconds(row["frt_p50"]), "p90": _seconds(row["frt_p90"])},
        "resolution_s": {"median": _seconds(row["res_p50"]), "p90": _seconds(row["res_p90"])},
        "deflection": {"bot_handled": bot, "bot_resolved": int(row["bot_resolved"]), "handed_over": handed,
                       "rate": _rate(bot, bot + handed)},
        "agents": [{"user_id": a["user_id"], "name": a["name"], "handled": int(a["handled"]),
                    "resolved": int(a["resolved"]), "first_response_median_s": _seconds(a["frt_p50"]),
                    "resolution_median_s": _seconds(a["res_p50"])} for a in agents],
    }


async def ai_outcomes(conn: AsyncConnection, tenant_id: str, rng: DashboardRange) -> dict[str, int]:
    """The AI's decisions in the range: applied replies and hand-offs, and decisions discarded."""
    counts = {"reply": 0, "handoff": 0, "discarded": 0}
    for outcome, applied, n in await conn.execute(AI_OUTCOMES, _params(tenant_id, rng)):
        key = outcome if applied and outcome in counts else "discarded"
        counts[key] += int(n)
    return counts


async def campaign_funnels(conn: AsyncConnection, tenant_id: str, rng: DashboardRange) -> list[dict[str, Any]]:
    """Campaigns running during the range (latest launched first) with their funnels (``campaigns.funnel``)."""
    found = list(await conn.execute(CAMPAIGNS, _params(tenant_id, rng, limit=MAX_CAMPAIGNS)))
    funnels = await store.funnels_of(conn, [str(row.id) for row in found])  # one query for all of them
    return [{"id": row.id, "name": row.name, "state": row.state, "launched_at": row.launched_at,
             "finished_at": row.finished_at,
             **{k: int(funnels[str(row.id)][k]) for k in ("targeted", "sent", "delivered", "read", "failed")}}  # type: ignore[call-overload]
            for row in found]


async def portfolio_use(conn: AsyncConnection, redis: Redis, tenant_id: str) -> list[dict[str, Any]]:
    """Unique template recipients in the rolling 24 h per WABA's portfolio, as the dispatcher counts them
    (``dispatcher.ratelimit``: a sorted set per business portfolio, the WABA id when it has none)."""
    accounts = list(await conn.execute(ACCOUNTS, {"tenant": tenant_id, "limit": MAX_ACCOUNTS}))
    if not accounts:
        return []
    seconds, micros = await redis.time()
    since = f"{seconds + micros / 1e6 - TIER_WINDOW_S:.6f}"
    used: dict[str, int] = {}
    for portfolio in {row.business_id or row.waba_id for row in accounts}:
        used[portfolio] = int(await redis.zcount(redis_keys.portfolio_recipients(portfolio), since, "+inf"))
    return [{"waba_id": row.waba_id, "name": row.name, "business_id": row.business_id,
             "tier_limit": row.tier_limit, "used": used[row.business_id or row.waba_id],
             "share": _rate(used[row.business_id or row.waba_id], row.tier_limit) if row.tier_limit else None}
            for row in accounts]

