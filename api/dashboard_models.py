"""Response model of ``GET /v1/dashboards`` (definitions of every figure: ``api.dashboard_queries``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class VolumeBucket(BaseModel):
    """One hour or day of the tenant's (by its time zone)."""

    start: datetime
    inbound: int
    outbound: int
    delivered: int
    read: int
    failed: int


class VolumeTotals(BaseModel):
    inbound: int
    outbound: int
    sent: int = Field(description="outbound messages Meta accepted (accepted, sent, delivered, read or played)")
    delivered: int
    read: int
    failed: int
    delivery_rate: float | None = Field(description="delivered / sent; null when nothing was sent")
    read_rate: float | None = Field(description="read / delivered; null when nothing was delivered")


class OutboundByAuthor(BaseModel):
    agent: int
    ai: int
    automation: int
    campaign: int
    api: int


class Failure(BaseModel):
    code: int | None = Field(description="Meta's error code (negative: the dispatcher's local refusals)")
    title: str | None
    count: int


class Spread(BaseModel):
    median: float | None = Field(description="seconds; null without data")
    p90: float | None = Field(description="seconds; null without data")


class Deflection(BaseModel):
    bot_handled: int = Field(description="episodes answered by the AI or an automation, never handed to a person")
    bot_resolved: int = Field(description="of those, episodes closed")
    handed_over: int = Field(description="episodes handed to a person (queued or assigned)")
    rate: float | None = Field(description="bot_handled / (bot_handled + handed_over)")


class Responses(BaseModel):
    episodes: int = Field(description="episodes (a customer's first message after a close) started in the range")
    answered: int
    resolved: int
    first_response_s: Spread
    resolution_s: Spread
    deflection: Deflection


class AgentFigures(BaseModel):
    user_id: str
    name: str | None
    handled: int = Field(description="episodes the agent replied in")
    resolved: int
    first_response_median_s: float | None
    resolution_median_s: float | None


class AiOutcomes(BaseModel):
    reply: int = Field(description="AI replies sent")
    handoff: int = Field(description="hand-offs the AI decided")
    discarded: int = Field(description="decisions that came too late (a person took over, a newer message)")


class CampaignFunnel(BaseModel):
    id: str
    name: str
    state: str
    launched_at: datetime | None
    finished_at: datetime | None
    targeted: int
    sent: int
    delivered: int
    read: int
    failed: int


class PortfolioUse(BaseModel):
    waba_id: str
    name: str | None
    business_id: str | None
    tier_limit: int | None = Field(description="unique template recipients allowed in 24 h; null = unlimited")
    used: int = Field(description="unique template recipients outside the service window in the last 24 h")
    share: float | None = Field(description="used / tier_limit")


class Dashboard(BaseModel):
    """Every figure of the dashboards for one range."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z", "timezone": "UTC", "bucket": "hour",
        "period": "today", "generated_at": "2026-12-01T10:15:02Z",
        "buckets": [{"start": "2026-12-01T09:00:00Z", "inbound": 12, "outbound": 10, "delivered": 9, "read": 7,
                     "failed": 1}],
        "totals": {"inbound": 12, "outbound": 10, "sent": 9, "delivered": 9, "read": 7, "failed": 1,
                   "delivery_rate": 1.0, "read_rate": 0.7778},
        "outbound_by_author": {"agent": 4, "ai": 5, "automation": 1, "campaign": 0, "api": 0},
        "failures": [{"code": 131026, "title": "Message undeliverable", "count": 1}],
        "responses": {"episodes": 6, "answered": 6, "resolved": 3,
                      "first_response_s": {"median": 2.4, "p90": 95.0},
                      "resolution_s": {"median": 600.0, "p90": 1500.0},
                      "deflection": {"bot_handled": 4, "bot_resolved": 1, "handed_over": 2, "rate": 0.6667}},
        "agents": [{"user_id": "7d0c1f3e-9a51-4c1e-9a7c-2a1f0d4c8b11", "name": "Asha", "handled": 2, "resolved": 2,
                    "first_response_median_s": 40.5, "resolution_median_s": 900.0}],
        "ai": {"reply": 5, "handoff": 2, "discarded": 0},
        "campaigns": [{"id": "3f6e9a2c-1b7d-4e0a-8c55-0d9b2f4a6e13", "name": "December sale", "state": "completed",
                       "launched_at": "2026-12-01T08:00:00Z", "finished_at": "2026-12-01T08:20:00Z",
                       "targeted": 500, "sent": 480, "delivered": 470, "read": 300, "failed": 20}],
        "portfolio": [{"waba_id": "102290129340398", "name": "Acme", "business_id": "1045372930",
                       "tier_limit": 1000, "used": 480, "share": 0.48}],
    }]})

    start: datetime
    end: datetime
    timezone: str = Field(description="the tenant's time zone, which days and hours are counted in")
    bucket: str
    period: str | None
    generated_at: datetime
    buckets: list[VolumeBucket]
    totals: VolumeTotals
    outbound_by_author: OutboundByAuthor
    failures: list[Failure]
    responses: Responses
    agents: list[AgentFigures]
    ai: AiOutcomes
    campaigns: list[CampaignFunnel]
    portfolio: list[PortfolioUse] = Field(description="per WABA, its portfolio's use of the template tier now "
                                                      "(a rolling 24 h, whatever the range)")
