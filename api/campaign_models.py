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

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Name
    from_: str | None = Field(default=None, alias="from", min_length=1, max_length=64)
    template: TemplateRef
    audience: Audience
    variables: dict[VariableRef, VariableSource] = Field(default_factory=dict, max_length=MAX_VARIABLES)
    schedule: Schedule = Field(default_factory=Schedule)


class TestSend(BaseModel):
    """Send the campaign's message to these numbers now (each a tenant's own test phone, say)."""

    model_config = ConfigDict(extra="forbid")

    to: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]] = Field(min_length=1, max_length=10)


class PreviewRequest(BaseModel):
    """Render the message for this contact (a wa_id), or for the audience's first one when omitted."""

    model_config = ConfigDict(extra="forbid")

    contact: str | None = Field(default=None, min_length=1, max_length=64)


class CampaignView(BaseModel):
    id: str
    name: str
    state: str
    state_reason: str | None
    waiting_for: str | None = Field(description="why queued recipients wait (e.g. portfolio_budget)")
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
