"""Request and response models of ``/v1/settings``; business hours are ``automations.rules.BusinessHours``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.ai import DEFAULT_THRESHOLD


class AiSettings(BaseModel):
    """Which AI answers the tenant's customers, and the confidence at which its reply is sent.

    ``offline`` is the local scorer over the knowledge base, ``openai`` an OpenAI-compatible model,
    ``off`` no AI (every conversation the automations do not settle goes to an agent).
    """

    model_config = ConfigDict(extra="forbid")

    provider: Literal["offline", "openai", "off"] = "offline"
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0.0, le=1.0)
