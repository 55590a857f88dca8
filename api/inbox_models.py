"""Request and response models of the agent inbox: ``/v1/conversations``, its actions, notes, read markers,
thread and the contact's history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.agent_models import Team
from api.message_models import MESSAGE_EXAMPLE, MESSAGE_PAGE_EXAMPLE, IdempotencyKey, MessageContent, MessageItem

StateName = Literal["bot", "queued", "agent", "closed"]
StateFilter = Literal["bot", "queued", "agent", "closed", "open"]  # open: any state but closed
HandledBy = Literal["ai", "automation", "human", "queue", "nobody"]
SenderKind = Literal["customer", "agent", "ai", "rule", "campaign", "api"]
MAX_UNREAD = 99  # unread counts are capped here ("99+")


class LastMessage(BaseModel):
    """The conversation's newest message, as the list previews it."""

    direction: Literal["inbound", "outbound"]
    type: str | None
    text: str | None
    status: str | None
    at: datetime


SUMMARY_EXAMPLE: dict[str, Any] = {
    "key": "106540352242922:15551234567", "phone_number_id": "106540352242922", "wa_id": "15551234567",
    "profile_name": "Maria Lopez", "phone": "+15551234567", "user_id": None, "username": None,
    "tags": ["vip"], "opted_out": False, "state": "agent",
    "assignee_id": "c41d7e9a-6b2f-4e3d-8a1c-5f6e7d8c9b0a", "team": "sales",
    "handoff_reason": "customer asked for a person", "last_message_at": "2026-12-01T09:14:03Z",
    "last_inbound_at": "2026-12-01T09:14:03Z", "window_open_until": "2026-12-02T09:14:03Z",
    "state_changed_at": "2026-12-01T09:10:00Z", "window_expires_at": "2026-12-02T09:14:03Z",
    "contact_id": "a7c3e1f9-4b2d-4e6a-8c0b-1d2e3f4a5b6c", "handled_by": "human", "unread": 1,
    "last_message": {
        "direction": "inbound", "type": "text", "text": "Where is my order?", "status": None,
        "at": "2026-12-01T09:14:03Z",
    },
}

THREAD_ITEM_EXAMPLE: dict[str, Any] = {
    **MESSAGE_EXAMPLE, "sender": {"kind": "customer", "id": None, "name": "Maria Lopez"},
}


class ConversationSummary(BaseModel):
    """One conversation of the inbox and its contact."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            SUMMARY_EXAMPLE,
        ]})

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
    window_expires_at: datetime | None = Field(None, description="the same instant as window_open_until")
    contact_id: str | None = Field(None, description="the contact's id in /v1/contacts (null before it exists)")
    handled_by: HandledBy = Field(
        "nobody", description="who answers the customer now: the AI (bot state, AI on), automation rules only "
                              "(bot state, AI off), a human (agent), the queue (waiting for a free agent), nobody "
                              "(closed)")
    unread: int | None = Field(None, description=f"the customer's messages the signed-in user has not seen, capped at "
                                                 f"{MAX_UNREAD}; null for an API key")
    last_message: LastMessage | None = None


class TabCounts(BaseModel):
    """``GET /v1/conversations/counts``: how many conversations each tab of the inbox holds (same filters)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"mine": 3, "unassigned": 5, "queued": 2, "all": 14}]})

    mine: int | None = Field(description="assigned to the signed-in user; null for an API key")
    unassigned: int = Field(description="open conversations (bot or queued) that no agent holds")
    queued: int
    all: int


class ReadMarker(BaseModel):
    """``POST /v1/conversations/{key}/read``: the user has seen the conversation up to this message row."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"conversation_key": "106540352242922:15551234567", "last_read_id": 40213, "unread": 0},
        ]})

    conversation_key: str
    last_read_id: int
    unread: int = 0


class Sender(BaseModel):
    """Who wrote a message: the customer, an agent (by name), the AI, an automation rule (by name), a campaign
    (by name) or an API key (by name)."""

    kind: SenderKind
    id: str | None = None
    name: str | None = None


class ThreadItem(MessageItem):
    """One message of the inbox's thread: the send API's message and who sent it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [THREAD_ITEM_EXAMPLE]})

    sender: Sender


class ThreadPage(BaseModel):
    """A page of a conversation's thread, newest first; pass ``next`` back as ``before`` for older ones."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                **MESSAGE_PAGE_EXAMPLE,
                "messages": [
                    THREAD_ITEM_EXAMPLE,
                    {
                        "id": "0b9f6c1e-5d4a-4c3b-8a2f-7e6d5c4b3a21",
                        "wamid": "wamid.HBgLMTU1NTEyMzQ1NjcVBgBRGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcB",
                        "direction": "outbound", "type": "text", "text": "It ships today.",
                        "payload": {"type": "text", "text": {"body": "It ships today."}}, "status": "read",
                        "error": None, "sent_at": "2026-12-01T09:14:05Z", "created_at": "2026-12-01T09:14:05Z",
                        "media": None,
                        "sender": {"kind": "agent", "id": "c41d7e9a-6b2f-4e3d-8a1c-5f6e7d8c9b0a", "name": "Sam"},
                    },
                ],
            },
        ]})

    messages: list[ThreadItem]
    next: str | None


class PastConversation(BaseModel):
    """One of the contact's earlier conversations: resolved at ``closed_at`` (or its other numbers' conversations)."""

    conversation_key: str
    phone_number_id: str
    state: str
    closed_at: datetime | None
    closed_by: str | None
    last_message_at: datetime | None


class ContactCampaign(BaseModel):
    """A campaign the contact was part of, and what became of its message."""

    campaign_id: str
    name: str
    state: str
    recipient_state: str
    reason: str | None
    sent_at: datetime | None
    read_at: datetime | None


class ContactHistory(BaseModel):
    """``GET /v1/conversations/{key}/history``: the contact's other conversations, resolved episodes and
    campaigns, newest first (each list at most ``MAX_HISTORY``)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "conversations": [
                    {
                        "conversation_key": "106540352242922:15551234567", "phone_number_id": "106540352242922",
                        "state": "closed", "closed_at": "2026-11-02T10:00:00Z",
                        "closed_by": "user:c41d7e9a-6b2f-4e3d-8a1c-5f6e7d8c9b0a",
                        "last_message_at": "2026-11-02T09:58:00Z",
                    },
                ],
                "campaigns": [
                    {
                        "campaign_id": "e2b4d6f8-1a3c-4e5b-9d7f-0a2c4e6b8d1f", "name": "Black Friday",
                        "state": "completed", "recipient_state": "read", "reason": None,
                        "sent_at": "2026-11-27T10:00:05Z", "read_at": "2026-11-27T10:03:11Z",
                    },
                ],
            },
        ]})

    conversations: list[PastConversation]
    campaigns: list[ContactCampaign]


class ConversationPublic(ConversationSummary):
    """``GET /v1/conversations/{key}``: the conversation's state and its contact's details."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {**SUMMARY_EXAMPLE, "version": 7, "attributes": {"city": "Austin"},
             "created_at": "2026-11-28T15:02:00Z"},
        ]})

    version: int
    attributes: dict[str, str]
    created_at: datetime


TemplateValue = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
VariableRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.]{1,64}$")]


class TemplateReply(BaseModel):
    """An approved template of the registry (``GET /v1/templates``: ``id``) and a value for each of its
    ``variables`` (``{"body.1": "Ann"}``): the reply builds Meta's components from them."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    values: Annotated[dict[VariableRef, TemplateValue], Field(max_length=50)] = Field(default_factory=dict)


class ReplyCreate(BaseModel):
    """``POST /v1/conversations/{key}/reply``: a message object as Meta's Graph API takes it, or ``template``:
    one of the registry's templates and its values (what to send once the 24-hour window has closed)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "message": {"type": "text", "text": {"body": "Your order ships today."}},
                "idempotency_key": "reply-7f3a",
            },
            {"template": {"id": "4c2e8a6f-1b3d-4f5a-9c7e-2d4f6a8c0e1b", "values": {"body.1": "Maria"}}},
        ]},
        extra="forbid")

    message: MessageContent | None = None
    template: TemplateReply | None = None
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _one_content(self) -> ReplyCreate:
        if (self.message is None) == (self.template is None):
            raise ValueError("give exactly one of 'message' or 'template'")
        return self


class AssignRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"agent_id": "c41d7e9a-6b2f-4e3d-8a1c-5f6e7d8c9b0a"}]},
        extra="forbid")

    agent_id: uuid.UUID


class TransferRequest(BaseModel):
    """To one agent, or to a team's queue (its next free agent takes it)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"team": "returns"}, {"agent_id": "c41d7e9a-6b2f-4e3d-8a1c-5f6e7d8c9b0a"}]},
        extra="forbid")

    agent_id: uuid.UUID | None = None
    team: Team | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferRequest:
        if (self.agent_id is None) == (self.team is None):
            raise ValueError("give exactly one of 'agent_id' or 'team'")
        return self


class CommandAccepted(BaseModel):
    """The command is durably queued for the conversation processor (202)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"accepted": True, "command_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}]})

    accepted: Literal[True] = True
    command_id: str


class NoteCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "Customer prefers a call after 5 pm."}]},
        extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


class NotePublic(BaseModel):
    """An internal note on a conversation; customers never see it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b", "conversation_key": "106540352242922:15551234567",
                "author": "user:c41d7e9a-6b2f-4e3d-8a1c-5f6e7d8c9b0a", "text": "Customer prefers a call after 5 pm.",
                "created_at": "2026-12-01T09:14:03Z",
            },
        ]})

    id: str
    conversation_key: str
    author: str
    text: str
    created_at: datetime
