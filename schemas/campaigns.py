"""Contracts of the campaign pipeline.

``CampaignJob`` (``campaigns.commands``, key campaign id): the API's launch or resume, and the expander's own
continuation (one page of the audience per record, so a crash repeats at most a page). ``CampaignHeld``
(same topic): the dispatcher did not send a campaign's message now (portfolio tier). ``RecipientRecord``
(``campaigns.recipients``, key ``{tenant}:{contact}``): one contact of one campaign, for the recipient
stage that applies the skip rules and hands the send to ``outbound.bulk``. ``CampaignProgress``
(``campaigns.progress``): a campaign's state and funnel, for dashboards.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from schemas.events import Event

CAMPAIGN_KEY_PREFIX = "campaign:"
_NAMESPACE = uuid.UUID("3f1c2b9e-6a57-4c1e-9d2a-5b8e7f0a1c44")


def idempotency_key(campaign_id: str, contact: str) -> str:
    """The deterministic idempotency key of a campaign's message to one contact: one send, whatever replays."""
    return f"{CAMPAIGN_KEY_PREFIX}{campaign_id}:{contact}"


def message_id(campaign_id: str, contact: str) -> str:
    """The message id of a campaign's message to one contact (stable across replays)."""
    return str(uuid.uuid5(_NAMESPACE, idempotency_key(campaign_id, contact)))


def parse_key(key: str | None) -> tuple[str, str] | None:
    """(campaign id, contact) of a campaign message's idempotency key, else None."""
    if not key or not key.startswith(CAMPAIGN_KEY_PREFIX):
        return None
    campaign, sep, contact = key[len(CAMPAIGN_KEY_PREFIX):].partition(":")
    return (campaign, contact) if sep and campaign and contact else None


class CampaignJob(Event):
    """Expand the audience from ``cursor`` (``expand``), or hand the still-queued recipients to the recipient
    stage again (``requeue``: after a resume, or when the tier has room; ``reason`` limits it to those waiting
    for that reason and ``limit`` to so many)."""

    kind: Literal["campaign_job"] = "campaign_job"
    campaign_id: str
    tenant_id: str
    action: Literal["expand", "requeue"] = "expand"
    cursor: int = 0
    reason: str | None = None
    limit: int | None = Field(default=None, ge=1)
    horizon: float = 0.0  # expand: when the sends of the pages before ``cursor`` should end (unix time; 0: now)


class CampaignHeld(Event):
    """The dispatcher held a campaign's message back (``reason``: ``portfolio_budget``)."""

    kind: Literal["campaign_held"] = "campaign_held"
    campaign_id: str
    tenant_id: str
    contact: str
    reason: str
    at: datetime


CampaignCommand = Annotated[CampaignJob | CampaignHeld, Field(discriminator="kind")]
CAMPAIGN_COMMAND: TypeAdapter[CampaignJob | CampaignHeld] = TypeAdapter(CampaignCommand)


class RecipientRecord(Event):
    """One contact of one campaign (``problem``: a skip already known from the audience)."""

    kind: Literal["campaign_recipient"] = "campaign_recipient"
    campaign_id: str
    tenant_id: str
    contact: str
    wa_id: str | None = None
    seq: int
    problem: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    requeue: bool = False


class CampaignProgress(Event):
    """A campaign's state, funnel and progress (``campaigns.progress``)."""

    kind: Literal["campaign_progress"] = "campaign_progress"
    campaign_id: str
    tenant_id: str
    state: str
    state_reason: str | None = None
    funnel: dict[str, Any]
    at: datetime
