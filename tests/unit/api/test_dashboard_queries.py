"""api.dashboard_queries: how the database's grouped rows become the answer (buckets, rates, outcomes, tier use).

The SQL itself runs against PostgreSQL in ``tests/integration/test_dashboards.py``; here a stand-in connection
answers each statement with fixed rows."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from api import dashboard_queries as q
from api.dashboard_range import resolve

NOW = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)


class Answers:
    """A connection that answers each known statement with its rows and records the parameters it got."""

    def __init__(self, answers: dict[Any, list[Any]]) -> None:
        self.answers = answers
        self.params: list[dict[str, Any]] = []

    async def execute(self, statement: Any, params: dict[str, Any]) -> list[Any]:
        self.params.append(params)
        return self.answers[statement]


def row(**fields: Any) -> SimpleNamespace:
    return SimpleNamespace(**fields)


async def test_volume_puts_each_row_in_its_local_bucket_and_counts_rates() -> None:
    rng = resolve(timezone="Asia/Kolkata", now=NOW, period="today")  # buckets start at :30 UTC
    nine = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)  # 09:00 in Kolkata, as date_trunc answers it
    conn = Answers({
        q.VOLUME: [(nine, "inbound", None, 5), (nine, "outbound", "read", 2), (nine, "outbound", "delivered", 1),
                   (nine, "outbound", "accepted", 1), (nine, "outbound", "failed", 1), (nine, "outbound", None, 1)],
        q.AUTHORS: [row(author="ai", n=4), row(author="agent", n=2)],
    })
    answer = await q.volume(conn, "tenant-a", rng)  # type: ignore[arg-type]
    assert all(p["tenant"] == "tenant-a" for p in conn.params)
    assert conn.params[0]["tz"] == "Asia/Kolkata" and conn.params[0]["unit"] == "hour"
    buckets = answer["buckets"]
    assert len(buckets) == 24
    [busy] = [b for b in buckets if b["inbound"]]
    assert busy == {"start": nine, "inbound": 5, "outbound": 6, "delivered": 3, "read": 2, "failed": 1}
    assert buckets.index(busy) == 9
    assert answer["totals"] == {"inbound": 5, "outbound": 6, "delivered": 3, "read": 2, "failed": 1, "sent": 4,
                                "delivery_rate": 0.75, "read_rate": 0.6667}
    assert answer["outbound_by_author"] == {"agent": 2, "ai": 4, "automation": 0, "campaign": 0, "api": 0}


async def test_no_traffic_has_no_rates() -> None:
    rng = resolve(timezone="UTC", now=NOW, period="7d")
    answer = await q.volume(Answers({q.VOLUME: [], q.AUTHORS: []}), "t", rng)  # type: ignore[arg-type]
    assert len(answer["buckets"]) == 7 and answer["totals"]["delivery_rate"] is None
    assert answer["totals"]["read_rate"] is None


async def test_ai_outcomes_count_discarded_decisions_apart() -> None:
    rng = resolve(timezone="UTC", now=NOW, period="today")
    conn = Answers({q.AI_OUTCOMES: [("reply", True, 4), ("handoff", True, 2), ("reply", False, 1),
                                    ("handoff", False, 1)]})
    assert await q.ai_outcomes(conn, "t", rng) == {"reply": 4, "handoff": 2, "discarded": 2}  # type: ignore[arg-type]


class Tier:
    """The dispatcher's portfolio sets in Redis: members scored by the time they were counted."""

    def __init__(self, now: float, sets: dict[str, list[float]]) -> None:
        self.now, self.sets = now, sets

    async def time(self) -> tuple[int, int]:
        return int(self.now), 0

    async def zcount(self, key: str, low: str, high: str) -> int:
        assert high == "+inf"
        return sum(1 for score in self.sets.get(key, []) if score >= float(low))


async def test_portfolio_use_counts_the_last_24_hours_per_portfolio() -> None:
    now = 1_800_000_000.0
    redis = Tier(now, {"aer:tier:B1": [now - 10, now - 3600, now - 90_000], "aer:tier:W2": [now - 5]})
    conn = Answers({q.ACCOUNTS: [row(waba_id="W1", name="Shop", business_id="B1", tier_limit=250, status="connected"),
                                 row(waba_id="W2", name=None, business_id=None, tier_limit=None, status="connected")]})
    found = await q.portfolio_use(conn, redis, "t")  # type: ignore[arg-type]
    assert found == [
        {"waba_id": "W1", "name": "Shop", "business_id": "B1", "tier_limit": 250, "used": 2, "share": 0.008},
        {"waba_id": "W2", "name": None, "business_id": None, "tier_limit": None, "used": 1, "share": None},
    ]
    assert await q.portfolio_use(Answers({q.ACCOUNTS: []}), redis, "t") == []  # type: ignore[arg-type]


@pytest.mark.parametrize("statement", [q.VOLUME, q.AUTHORS, q.FAILURES, q.RESPONSES, q.AI_OUTCOMES, q.CAMPAIGNS,
                                       q.ACCOUNTS])
def test_every_statement_names_the_tenant(statement: Any) -> None:
    sql = statement.text
    assert "tenant_id = :tenant" in sql
    if ":start" in sql:  # a range query is bounded on both sides
        assert ":end" in sql
