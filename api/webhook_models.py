"""Request and response models of ``/v1/webhooks``: tenants' outbound webhook endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from webhooks.catalogue import MAX_FILTER, check_filter
from webhooks.urls import MAX_URL_LENGTH

MAX_RANGE_S = 7 * 24 * 3600  # Kafka keeps the source topics a week
EventType = Annotated[str, StringConstraints(max_length=64)]


def _filter(events: list[str] | None) -> list[str] | None:
    return None if events is None else check_filter(events)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "url": "https://hooks.shop.example/aerostic", "events": ["message.received", "message.status"],
                "description": "order system", "enabled": True,
            },
        ]},
        extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    events: list[EventType] = Field(default_factory=list, max_length=MAX_FILTER,
                              description='event types to deliver; [] or ["*"] for every event')
    description: str = Field("", max_length=500)
    enabled: bool = True

    _events = field_validator("events")(check_filter)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"enabled": False}, {"events": ["*"], "description": "everything"}]},
        extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=MAX_URL_LENGTH)
    events: list[EventType] | None = Field(None, max_length=MAX_FILTER)
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None

    _events = field_validator("events")(_filter)


class WebhookPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "3a5c7e9b-1d3f-4a5c-8e0b-2d4f6a8c0e2d", "url": "https://hooks.shop.example/aerostic",
                "description": "order system", "events": ["message.received", "message.status"], "enabled": True,
                "state": "active", "disabled_at": None, "disabled_reason": None, "failing_since": None,
                "previous_secret_until": None, "created_at": "2026-11-20T08:40:00Z",
                "updated_at": "2026-11-20T08:40:00Z",
            },
        ]})

    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    state: Literal["active", "paused", "disabled"]
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookPublic):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "3a5c7e9b-1d3f-4a5c-8e0b-2d4f6a8c0e2d", "url": "https://hooks.shop.example/aerostic",
                "description": "order system", "events": ["message.received", "message.status"], "enabled": True,
                "state": "active", "disabled_at": None, "disabled_reason": None, "failing_since": None,
                "previous_secret_until": None, "created_at": "2026-11-20T08:40:00Z",
                "updated_at": "2026-11-20T08:40:00Z", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            },
        ]})

    secret: str = Field(description="whsec_…: shown only now; it signs every delivery (Standard Webhooks)")


class RotateSecret(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"overlap_s": 86400}]},
        extra="forbid")

    overlap_s: int = Field(24 * 3600, ge=0, le=7 * 24 * 3600,
                           description="how long the previous secret keeps signing beside the new one")


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "8c0e2a4c-6e8a-4c0e-9a2c-4e6a8c0e2a4c", "event_id": "evt_2Yb7Qk9mX4",
                "event_type": "message.received", "origin": "live", "state": "delivered", "attempts": 1,
                "response_status": 200, "latency_ms": 84, "last_error": None, "created_at": "2026-12-01T09:14:03Z",
                "last_attempt_at": "2026-12-01T09:14:03Z", "next_attempt_at": None,
                "finished_at": "2026-12-01T09:14:03Z",
            },
        ]})

    id: str
    event_id: str
    event_type: str
    origin: str = Field(description='"live", or the id of the redelivery request that queued it')
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    response_status: int | None
    latency_ms: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    finished_at: datetime | None


class Redeliver(BaseModel):
    """One event (``event_id``), or every event recorded in [``since``, ``until``] (7 days at most)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"event_id": "evt_2Yb7Qk9mX4"}, {"since": "2026-12-01T00:00:00Z", "until": "2026-12-01T12:00:00Z"},
        ]},
        extra="forbid")

    event_id: str | None = Field(None, min_length=1, max_length=64)
    since: datetime | None = None
    until: datetime | None = None

    @model_validator(mode="after")
    def _one_or_range(self) -> Redeliver:
        if self.event_id is not None:
            if self.since is not None or self.until is not None:
                raise ValueError("give either event_id or since and until, not both")
            return self
        if self.since is None or self.until is None:
            raise ValueError("give event_id, or since and until")
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("since and until need a time zone (e.g. 2026-01-01T00:00:00Z)")
        if self.until < self.since:
            raise ValueError("until is before since")
        if (self.until - self.since).total_seconds() > MAX_RANGE_S:
            raise ValueError("the range may span at most 7 days")
        return self


class RedeliveryPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "5b7d9f1b-3d5f-4b7d-9f1b-3d5f7b9d1f3b", "state": "done", "event_id": None,
                "since": "2026-12-01T00:00:00Z", "until": "2026-12-01T12:00:00Z", "events": 42, "error": None,
                "requested_at": "2026-12-01T09:14:03Z", "done_at": "2026-12-01T09:14:05Z",
            },
        ]})

    id: str
    state: Literal["requested", "done", "failed"]
    event_id: str | None
    since: datetime
    until: datetime
    events: int = Field(description="deliveries queued, once done")
    error: str | None
    requested_at: datetime
    done_at: datetime | None
