"""Embedded Signup events: ``signup.requests`` (ingress callback → dispatcher) and ``signup.results``.

A request carries Meta's one-time authorization ``code``, never a token: only the dispatcher
exchanges it, and the token it gets back is encrypted before anything is stored. ``attempt_id``
is the nonce of the OAuth ``state`` that started the attempt; both topics are keyed by tenant id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.events import Event

# The steps of the dispatcher's onboarding, in order; a failed result names the one that failed.
SIGNUP_STEPS = ("exchange", "debug_token", "businesses", "wabas", "phone_numbers", "subscribe", "register",
                "store", "publish")
SignupStep = Literal["exchange", "debug_token", "businesses", "wabas", "phone_numbers", "subscribe", "register",
                     "store", "publish"]


class SignupRequest(Event):
    """The tenant approved Meta's dialog: exchange ``code`` and connect what it grants."""

    kind: Literal["signup_request"] = "signup_request"
    tenant_id: str
    attempt_id: str
    code: str
    redirect_uri: str
    requested_by: str | None = None
    requested_at: datetime


class SignupWaba(BaseModel):
    """A WhatsApp Business Account the signup connected."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    waba_id: str
    business_id: str | None = None
    name: str | None = None


class SignupNumber(BaseModel):
    """A phone number the signup connected, with what Meta says about it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    phone_number_id: str
    waba_id: str
    display_phone_number: str | None = None
    verified_name: str | None = None
    quality_rating: str | None = None
    messaging_limit_tier: str | None = None
    throughput_level: str | None = None
    throughput_mps: int = 80
    registered: bool = False  # True when this signup registered it (POST /{id}/register)


class SignupResult(Event):
    """The outcome of one attempt. ``failed`` names the step and Meta's code and message."""

    kind: Literal["signup_result"] = "signup_result"
    tenant_id: str
    attempt_id: str
    outcome: Literal["connected", "failed"]
    step: SignupStep | None = None
    error_code: int | None = None
    error_message: str | None = None
    reconnected: bool = False
    wabas: list[SignupWaba] = []
    numbers: list[SignupNumber] = []
    finished_at: datetime
