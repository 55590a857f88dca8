"""The conversation processor's own commands and events (``conversations.commands`` / ``conversations.events``).

Commands come from the agent API (assign, transfer, resolve, reopen) and from assignment itself
(``claim``: a queued conversation was given an agent's free capacity). Events record every change
the processor makes: state and assignee, the contact's tags, attributes and opt-out, each automation
rule that ran, and each AI decision with whether it was applied. The projector writes them to
PostgreSQL; ``MessageQueued`` (``schemas.outbound``) shares the events topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from schemas.events import Event
from schemas.outbound import MessageQueued

ConversationStateName = Literal["bot", "queued", "agent", "closed"]


class ConversationCommand(Event):
    """An agent's or the assigner's command about one conversation."""

    kind: Literal["conversation_command"] = "conversation_command"
    tenant_id: str
    conversation_key: str
    action: Literal["assign", "transfer", "resolve", "reopen", "claim"]
    agent_id: str | None = None  # assign/transfer to this agent; claim: the agent whose capacity was reserved
    team: str | None = None
    actor: str
    at: datetime


class ConversationChanged(Event):
    """The conversation's state after a change, and why."""

    kind: Literal["conversation_changed"] = "conversation_changed"
    tenant_id: str
    conversation_key: str
    phone_number_id: str
    wa_id: str
    state: ConversationStateName
    assignee_id: str | None = None
    team: str | None = None
    cause: str  # inbound, rule, ai_handoff, ai_error, assign, transfer, claim, resolve, reopen, agent_reply…
    reason: str | None = None
    version: int
    at: datetime


class ContactChange(BaseModel):
    """What one change did: ``add_tag``/``remove_tag`` (``tag``), ``set_attribute`` (``key``, ``value``), or
    ``opt_out``/``opt_in`` (``source``: ``keyword`` for STOP/START, ``rule`` for an automation)."""

    type: Literal["add_tag", "remove_tag", "set_attribute", "opt_out", "opt_in"]
    tag: str | None = None
    key: str | None = None
    value: str | None = None
    source: Literal["keyword", "rule"] | None = None


class ContactChanged(Event):
    """The contact's tags, attributes and campaign opt-out after a change, as the conversation sees them.

    ``change`` says what changed; the projector applies only that (the contact is also changed by the API,
    imports and Meta's opt-out webhooks). An event without it (older) stands for the whole contact.
    """

    kind: Literal["contact_changed"] = "contact_changed"
    tenant_id: str
    wa_id: str
    tags: list[str]
    attributes: dict[str, str]
    opted_out: bool
    at: datetime
    change: ContactChange | None = None


class RuleExecuted(Event):
    """One automation rule (or a built-in keyword) ran for a conversation."""

    kind: Literal["rule_executed"] = "rule_executed"
    tenant_id: str
    conversation_key: str
    rule_id: str  # "builtin:opt_out" / "builtin:opt_in" for the built-in keywords
    rule_name: str
    trigger_event: str  # the wamid that fired it, or "resolved:<version>"
    actions: list[dict[str, Any]]
    stopped: bool
    at: datetime


class AiOutcome(Event):
    """An AI decision reached the processor: applied (reply or hand-off) or discarded, and why."""

    kind: Literal["ai_outcome"] = "ai_outcome"
    tenant_id: str
    conversation_key: str
    message_wamid: str
    outcome: Literal["reply", "handoff"]
    confidence: float
    reason: str
    applied: bool
    discarded_because: str | None = None
    at: datetime


ConversationEvent = Annotated[MessageQueued | ConversationChanged | ContactChanged | RuleExecuted | AiOutcome,
                              Field(discriminator="kind")]
CONVERSATION_EVENT: TypeAdapter[ConversationEvent] = TypeAdapter(ConversationEvent)
