"""Request and response bodies of ``/v1/campaigns``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from campaigns.audience import Audience
from campaigns.schedule import Schedule
from campaigns.variables import MAX_VARIABLES, VariableSource

Name = Field(min_length=1, max_length=200)
VariableRef = Annotated[str, StringConstraints(min_length=1, max_length=120)]


class TemplateRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=2, max_length=20)


class CampaignCreate(BaseModel):
    """A new campaign (a draft until launched)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "name": "December sale", "from": "106540352242922",
                "template": {"name": "december_sale", "language": "en_US"},
                "audience": {"kind": "segment", "segment_id": "0d2f4b6d-8f0a-4c2e-9b4d-6f8a0c2e4b6d"},
                "variables": {"body.1": {"source": "attribute:first_name", "default": "there"}},
                "schedule": {
                    "send_at": "2026-12-05T09:00:00", "timezone": "America/Chicago",
                    "quiet_hours": {"start": "21:00:00", "end": "09:00:00"},
                },
            },
        ]},
        extra="forbid", populate_by_name=True)

    name: str = Name
    from_: str | None = Field(default=None, alias="from", min_length=1, max_length=64)
    template: TemplateRef
    audience: Audience
    variables: dict[VariableRef, VariableSource] = Field(default_factory=dict, max_length=MAX_VARIABLES)
    schedule: Schedule = Field(default_factory=Schedule)


class TestSend(BaseModel):
    """Send the campaign's message to these numbers now (each a tenant's own test phone, say)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"to": ["+15551234567"]}]},
        extra="forbid")

    to: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]] = Field(min_length=1, max_length=10)


class PreviewRequest(BaseModel):
    """Render the message for this contact (a wa_id), or for the audience's first one when omitted."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"contact": "15551234567"}]},
        extra="forbid")

    contact: str | None = Field(default=None, min_length=1, max_length=64)


class CampaignView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "e2b4d6f8-1a3c-4e5b-9d7f-0a2c4e6b8d1f", "name": "December sale", "state": "running",
                "state_reason": None, "waiting_for": None, "phone_number_id": "106540352242922",
                "template": {"name": "december_sale", "language": "en_US"},
                "audience": {"kind": "segment", "segment_id": "0d2f4b6d-8f0a-4c2e-9b4d-6f8a0c2e4b6d"},
                "audience_size": 1280,
                "variables": {"body.1": {"source": "attribute:first_name", "default": "there"}},
                "schedule": {"send_at": "2026-12-05T09:00:00", "timezone": "America/Chicago", "quiet_hours": None},
                "created_at": "2026-12-01T08:00:00Z", "launched_at": "2026-12-05T09:00:00Z", "finished_at": None,
                "expanded": True,
                "funnel": {"queued": 300, "sent": 900, "delivered": 850, "read": 410, "replied": 37, "failed": 12},
                "progress": {"done": 912, "total": 1280}, "eta_s": 46.0,
            },
        ]})

    id: str
    name: str
    state: str
    state_reason: str | None
    waiting_for: str | None = Field(description="why queued recipients wait: portfolio_budget (the daily limit of "
                                                "unique people), account_needs_reauth or account_disconnected (the "
                                                "number's WhatsApp account must be reconnected; nothing is dropped)")
    phone_number_id: str
    template: dict[str, str]
    audience: dict[str, Any]
    audience_size: int | None
    variables: dict[str, Any]
    schedule: dict[str, Any]
    created_at: datetime
    launched_at: datetime | None
    finished_at: datetime | None
    expanded: bool
    funnel: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    eta_s: float | None = None


class RecipientView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "contact": "15551234567", "wa_id": "15551234567", "state": "read", "reason": None, "error_code": None,
                "error_title": None, "wamid": "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
                "ambiguous": False, "submitted_at": "2026-12-05T09:00:02Z", "sent_at": "2026-12-05T09:00:03Z",
                "delivered_at": "2026-12-05T09:00:04Z", "read_at": "2026-12-05T09:12:40Z", "replied_at": None,
                "failed_at": None,
            },
        ]})

    contact: str
    wa_id: str | None
    state: str
    reason: str | None
    error_code: int | None
    error_title: str | None
    wamid: str | None
    ambiguous: bool
    submitted_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    replied_at: datetime | None
    failed_at: datetime | None
