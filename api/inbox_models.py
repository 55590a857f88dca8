"""Request and response models of the agent inbox: ``/v1/conversations``, its actions and notes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.agent_models import Team
from api.message_models import IdempotencyKey, MessageContent

StateName = Literal["bot", "queued", "agent", "closed"]


class ConversationSummary(BaseModel):
    """One conversation of the inbox and its contact."""

    key: str
    phone_number_id: str
    wa_id: str = Field(description="the customer's one identity: their number, or their BSUID (US.1349…) when "
                                   "Meta first named them by username only")
    profile_name: str | None
    phone: str | None = Field(None, description="the customer's number; null for a username-only customer")
    user_id: str | None = Field(None, description="the customer's business-scoped user id (BSUID)")
    username: str | None = Field(None, description="the customer's WhatsApp username, shown where there is no number")
    tags: list[str]
    opted_out: bool
    state: StateName
    assignee_id: str | None
    team: str | None
    handoff_reason: str | None
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    window_open_until: datetime | None = Field(
        description="until when free-form messages may be sent (24 h after the customer's last message); "
                    "after it only templates")
    state_changed_at: datetime | None


class ConversationPublic(ConversationSummary):
    """``GET /v1/conversations/{key}``: the conversation's state and its contact's details."""

    version: int
    attributes: dict[str, str]
    created_at: datetime


class ReplyCreate(BaseModel):
    """``POST /v1/conversations/{key}/reply``: a message object as Meta's Graph API takes it."""

    model_config = ConfigDict(extra="forbid")

    message: MessageContent
    idempotency_key: IdempotencyKey | None = None


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: uuid.UUID


class TransferRequest(BaseModel):
    """To one agent, or to a team's queue (its next free agent takes it)."""

    model_config = ConfigDict(extra="forbid")

    agent_id: uuid.UUID | None = None
    team: Team | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferRequest:
        if (self.agent_id is None) == (self.team is None):
            raise ValueError("give exactly one of 'agent_id' or 'team'")
        return self


class CommandAccepted(BaseModel):
    """The command is durably queued for the conversation processor (202)."""

    accepted: Literal[True] = True
    command_id: str


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


class NotePublic(BaseModel):
    """An internal note on a conversation; customers never see it."""

    id: str
    conversation_key: str
    author: str
    text: str
    created_at: datetime
