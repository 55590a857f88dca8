"""``GET /v1/dashboards`` against the real stack: a fresh tenant's real traffic, counted for that tenant only.

Customers write; the AI answers two greetings (one to a customer Meta cannot deliver to: 131026); a question
is handed over, an agent replies and resolves it; another tenant's customer writes too. The expected figures
are the definitions of ``api.dashboard_queries`` applied by hand to the rows the pipeline stored.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.helpers import Business, BusinessFactory, customer_writes, rows, scalar, wait_for
from tests.integration.people import Person, person
from tests.integration.test_campaigns import approved_template, campaign, command, create, csv_of, settled

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPLY = {"type": "text", "text": {"body": "Happy to help with that"}}


def customer() -> str:
    return f"9198{random.randrange(10**8):08d}"


def percentile(values: list[float], q: float) -> float:
    """PostgreSQL's ``percentile_cont``: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


async def dashboard(api: httpx.AsyncClient, auth: dict[str, str], **params: str) -> dict[str, Any]:
    answer = await api.get("/v1/dashboards", headers=auth, params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def outbound(db: AsyncEngine, business: Business, wa_id: str, author: str) -> list[Any]:
    return await rows(db, "SELECT sent_at, status, error_code, error_title FROM messages WHERE tenant_id = :t "
                          "AND conversation_key = :k AND direction = 'outbound' AND requested_by LIKE :a "
                          "AND sent_at IS NOT NULL ORDER BY sent_at", t=business.tenant_id,
                      k=business.conversation(wa_id), a=f"{author}:%")


async def status_of(db: AsyncEngine, business: Business, wa_id: str, author: str, wanted: str) -> Any:
    found = await outbound(db, business, wa_id, author)
    return found[0] if found and found[0].status == wanted else None


async def test_the_dashboards_count_one_tenants_traffic(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    began = datetime.now(UTC) - timedelta(minutes=1)
    shop, other = await business_factory("dashboards"), await business_factory("dashboards-other")
    admin: Person = await person(api, db, shop.tenant_id, role="admin")
    agent: Person = await person(api, db, shop.tenant_id, role="agent")
    greeted, asking, unreachable, elsewhere = customer(), customer(), customer(), customer()
    marked = await sim.post("/_sim/recipients/undeliverable", json={"wa_id": unreachable})
    assert marked.status_code == 200, marked.text

    await customer_writes(sim, db, shop, greeted, text="hello")
    await customer_writes(sim, db, shop, asking)  # a question nobody taught the AI: handed over
    await customer_writes(sim, db, shop, unreachable, text="hello")
    await customer_writes(sim, db, other, elsewhere, text="hello")

    await wait_for(lambda: status_of(db, shop, greeted, "ai", "read"), what="the AI's reply to be read")
    failed = await wait_for(lambda: status_of(db, shop, unreachable, "ai", "failed"),
                            what="the AI's reply to the unreachable customer to fail")
    assert failed.error_code == 131026
    key = shop.conversation(asking)
    await wait_for(lambda: scalar(db, "SELECT state FROM conversations WHERE key = :k AND state = 'queued'", k=key),
                   what="the question to be handed over")
    replied = await api.post(f"/v1/conversations/{key}/reply", headers=agent.auth, json={"message": REPLY})
    assert replied.status_code == 202, replied.text
    await wait_for(lambda: status_of(db, shop, asking, "user", "read"), what="the agent's reply to be read")
    resolved = await api.post(f"/v1/conversations/{key}/resolve", headers=agent.auth)
    assert resolved.status_code == 202, resolved.text
    await wait_for(lambda: scalar(db, "SELECT at FROM conversation_events WHERE tenant_id = :t AND "
                                      "conversation_key = :k AND kind = 'conversation_changed' AND "
                                      "payload ->> 'state' = 'closed'", t=shop.tenant_id, k=key),
                   what="the resolution to be stored")

    window = {"from": began.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    seen = await dashboard(api, admin.auth, **window)

    # Volume and delivery: three customers in; the AI's two replies and the agent's one out (plus anything the
    # tenant's automations added, counted from the stored rows).
    stored_out = await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND direction = 'outbound' "
                                  "AND sent_at IS NOT NULL", t=shop.tenant_id)
    totals = seen["totals"]
    assert totals["inbound"] == 3 and sum(b["inbound"] for b in seen["buckets"]) == 3
    assert totals["outbound"] == stored_out >= 3 and sum(b["outbound"] for b in seen["buckets"]) == stored_out
    assert seen["outbound_by_author"]["ai"] == 2 and seen["outbound_by_author"]["agent"] == 1
    assert totals["failed"] == 1 and totals["sent"] == stored_out - 1
    assert totals["delivered"] >= 2 and totals["read"] >= 2
    assert totals["delivery_rate"] == round(totals["delivered"] / totals["sent"], 4)
    assert totals["read_rate"] == round(totals["read"] / totals["delivered"], 4)
    assert seen["failures"] == [{"code": 131026, "title": failed.error_title, "count": 1}]
    assert failed.error_title == "Message undeliverable"

    # First response: each customer's first message to the first reply by the AI, an automation or an agent.
    firsts, waits = {}, []
    for wa_id in (greeted, asking, unreachable):
        [first_in] = await rows(db, "SELECT sent_at FROM messages WHERE tenant_id = :t AND conversation_key = :k "
                                    "AND direction = 'inbound'", t=shop.tenant_id, k=shop.conversation(wa_id))
        replies = await rows(db, "SELECT min(sent_at) AS at FROM messages WHERE tenant_id = :t AND "
                                 "conversation_key = :k AND direction = 'outbound' AND (requested_by LIKE 'ai:%' "
                                 "OR requested_by LIKE 'user:%' OR requested_by LIKE 'automation:%')",
                             t=shop.tenant_id, k=shop.conversation(wa_id))
        firsts[wa_id] = first_in.sent_at
        waits.append((replies[0].at - first_in.sent_at).total_seconds())
    responses = seen["responses"]
    assert (responses["episodes"], responses["answered"], responses["resolved"]) == (3, 3, 1)
    assert responses["first_response_s"]["median"] == pytest.approx(percentile(waits, 0.5), abs=0.002)
    assert responses["first_response_s"]["p90"] == pytest.approx(percentile(waits, 0.9), abs=0.002)
    closed_at = await scalar(db, "SELECT at FROM conversation_events WHERE tenant_id = :t AND conversation_key = :k "
                                 "AND kind = 'conversation_changed' AND payload ->> 'state' = 'closed'",
                             t=shop.tenant_id, k=key)
    resolution = (closed_at - firsts[asking]).total_seconds()
    assert responses["resolution_s"] == {"median": pytest.approx(resolution, abs=0.002),
                                         "p90": pytest.approx(resolution, abs=0.002)}
    assert responses["deflection"] == {"bot_handled": 2, "bot_resolved": 0, "handed_over": 1,
                                       "rate": round(2 / 3, 4)}

    # The agent: from the hand-off to their reply; resolved once.
    handed_at = await scalar(db, "SELECT min(at) FROM conversation_events WHERE tenant_id = :t AND "
                                 "conversation_key = :k AND kind = 'conversation_changed' AND "
                                 "payload ->> 'state' IN ('queued', 'agent')", t=shop.tenant_id, k=key)
    [agent_reply] = await outbound(db, shop, asking, "user")
    [row] = seen["agents"]
    assert row["user_id"] == agent.user_id and row["name"] == agent.email
    assert (row["handled"], row["resolved"]) == (1, 1)
    assert row["first_response_median_s"] == pytest.approx((agent_reply.sent_at - handed_at).total_seconds(),
                                                           abs=0.002)
    assert row["resolution_median_s"] == pytest.approx(resolution, abs=0.002)

    assert seen["ai"] == {"reply": 2, "handoff": 1, "discarded": 0}
    assert seen["campaigns"] == []
    [portfolio] = seen["portfolio"]
    assert (portfolio["waba_id"], portfolio["business_id"]) == (shop.waba_id, shop.business_id)
    assert (portfolio["tier_limit"], portfolio["used"], portfolio["share"]) == (None, 0, None)

    # The other tenant sees its own customer only, and this tenant's figures are not in it.
    theirs = await dashboard(api, other.auth, **window)
    assert theirs["totals"]["inbound"] == 1 and theirs["failures"] == [] and theirs["agents"] == []
    assert theirs["responses"]["episodes"] == 1 and [p["waba_id"] for p in theirs["portfolio"]] == [other.waba_id]

    # Today, by the tenant's day (UTC here), holds the same traffic (unless the day changed during the test).
    today = await dashboard(api, admin.auth, period="today")
    if datetime.now(UTC).date() == began.date():
        assert today["totals"]["inbound"] == 3 and len(today["buckets"]) == 24 and today["bucket"] == "hour"

    # Agents may not read the dashboards.
    refused = await api.get("/v1/dashboards", headers=agent.auth, params={"period": "today"})
    assert refused.status_code == 403, refused.text


BAD_RANGES = [
    ({}, "give 'period'"),
    ({"period": "90d"}, "'period' must be"),
    ({"from": "2026-01-05", "to": "2026-01-04"}, "'to' must be after 'from'"),
    ({"from": "2026-01-01", "to": "2026-04-04"}, "more than 93 days"),
    ({"from": "2026-01-01", "to": "2026-02-15", "bucket": "hour"}, "at most 31 days"),
    ({"period": "today", "bucket": "minute"}, "'bucket' must be"),
    ({"from": "last week", "to": "2026-01-04"}, "'from' must be a date"),
    ({"from": "2026-01-01"}, "give 'period'"),
]


async def test_bad_ranges_are_refused_with_the_reason(api: httpx.AsyncClient,
                                                      business_factory: BusinessFactory) -> None:
    shop = await business_factory("dashboards-ranges")
    for params, says in BAD_RANGES:
        answer = await api.get("/v1/dashboards", headers=shop.auth, params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert says in answer.json()["detail"], (params, answer.json())
    longest = await dashboard(api, shop.auth, **{"from": "2026-01-01", "to": "2026-04-03"})
    assert len(longest["buckets"]) == 93 and longest["bucket"] == "day"


@pytest.mark.usefixtures("pipeline_ready")
async def test_campaign_funnels_and_the_portfolio_tier(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    began = datetime.now(UTC) - timedelta(minutes=1)
    shop = await business_factory("dashboards-campaign", tier=250)
    await approved_template(db, sim, shop)
    people = [customer() for _ in range(3)]
    marked = await sim.post("/_sim/recipients/undeliverable", json={"wa_id": people[0]})
    assert marked.status_code == 200, marked.text
    created = await create(api, shop, {"kind": "csv", "csv": csv_of([(f"+{p}", "Ann") for p in people])})
    await command(api, shop, created["id"], "launch")
    await settled(api, shop, created["id"])

    async def funnel_settled() -> dict[str, Any] | None:
        funnel = (await campaign(api, shop, created["id"]))["funnel"]
        return funnel if (funnel["failed"], funnel["delivered"], funnel["read"]) == (1, 2, 2) else None

    funnel = await wait_for(funnel_settled, what="the campaign's statuses (the simulator reads what it delivers)")
    window = {"from": began.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    keys = ("targeted", "sent", "delivered", "read", "failed")

    async def projected() -> dict[str, Any] | None:  # the messages' statuses are projected apart from the funnel
        found = await dashboard(api, shop.auth, **window)
        done = (found["totals"]["failed"], found["totals"]["delivered"]) == (1, 2) and len(found["campaigns"]) == 1
        return found if done and {k: found["campaigns"][0][k] for k in keys} == {k: funnel[k] for k in keys} else None

    seen = await wait_for(projected, what="the dashboard to count the campaign's recipients as its funnel does")

    [row] = seen["campaigns"]
    assert row["id"] == created["id"] and row["name"] == created["name"] and row["state"] == "completed"
    assert (row["targeted"], row["failed"]) == (3, 1)
    assert seen["outbound_by_author"]["campaign"] == 3
    assert seen["failures"] == [{"code": 131026, "title": "Message undeliverable", "count": 1}]
    # Three customers outside their service window got a template: three seats of the portfolio's 250.
    [portfolio] = seen["portfolio"]
    assert {k: portfolio[k] for k in ("waba_id", "business_id", "tier_limit", "used", "share")} == \
        {"waba_id": shop.waba_id, "business_id": shop.business_id, "tier_limit": 250, "used": 3, "share": 0.012}

    # A range that ends before the campaign was launched does not show it.
    before = await dashboard(api, shop.auth, **{"from": (began - timedelta(days=2)).isoformat(),
                                                "to": (began - timedelta(days=1)).isoformat()})
    assert before["campaigns"] == [] and before["totals"]["outbound"] == 0
