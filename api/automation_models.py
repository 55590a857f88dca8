"""Request and response models of ``/v1/automations``; a rule's body is ``automations.rules.RuleSpec``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from automations.rules import RULE_EXAMPLE, Rule


class RulePublic(Rule):
    """A stored rule, as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{
            **RULE_EXAMPLE, "id": "5b0c9a8e-2f4d-4c1e-9a65-1f2b3c4d5e6f", "position": 0,
            "created_at": "2026-11-20T08:45:00Z", "updated_at": "2026-11-20T08:45:00Z",
        }]})

    created_at: datetime
    updated_at: datetime


class UnreadableRulePublic(BaseModel):
    """A stored rule that no longer validates (saved before a stricter check): it never runs; fix or delete it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "6c1d0b9f-3a5e-4d2f-8b76-2a3c4d5e6f70", "position": 1, "name": "Old greeting", "enabled": True,
                "stop": False, "trigger": {"type": "first_message"}, "conditions": [],
                "actions": [{"type": "reply", "message": {"type": "text"}}],
                "problem": "actions.0.message: type is 'text' but no 'text' object was given",
                "created_at": "2026-10-01T08:00:00Z", "updated_at": "2026-10-01T08:00:00Z",
            },
        ]})

    id: str
    position: int
    name: str
    enabled: bool
    stop: bool
    trigger: dict[str, Any]
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    problem: str
    created_at: datetime
    updated_at: datetime


class RuleToggle(BaseModel):
    """``PATCH /v1/automations/{rule_id}``: switch a rule on or off."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"enabled": False}]},
        extra="forbid", strict=True)

    enabled: bool


class RuleOrder(BaseModel):
    """``PUT /v1/automations/order``: every rule id of the tenant, in the order they should run."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"ids": ["5b0c9a8e-2f4d-4c1e-9a65-1f2b3c4d5e6f", "6c1d0b9f-3a5e-4d2f-8b76-2a3c4d5e6f70"]},
        ]},
        extra="forbid")

    ids: list[uuid.UUID] = Field(max_length=1000)


class RuleExecutionPublic(BaseModel):
    """One run of a rule on a conversation (recorded by the conversation processor)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 4021, "rule_id": "5b0c9a8e-2f4d-4c1e-9a65-1f2b3c4d5e6f", "rule_name": "Opening hours",
        "conversation_key": "106540352242922:15551234567", "trigger_event": "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQ",
        "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "We open at 9:00."}}}],
        "stopped": False, "executed_at": "2026-12-01T09:14:03Z"}]})

    id: int
    rule_id: str
    rule_name: str
    conversation_key: str
    trigger_event: str
    actions: list[dict[str, Any]]
    stopped: bool
    executed_at: datetime
