"""The models of Embedded Signup's admin API: seeded accounts (a Facebook user, their business portfolios,
WABAs and phone numbers) and injected faults."""

from __future__ import annotations

import hashlib
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from metasim.limits import TIER_NAMES

Step = Literal["access_token", "debug_token", "businesses", "owned_wabas", "phone_numbers", "subscribed_apps",
               "register"]
TierName = Literal["TIER_50", "TIER_250", "TIER_1K", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED"]
assert set(get_args(TierName)) == set(TIER_NAMES)


class NumberSeed(BaseModel):
    """A phone number of a seeded WABA, with the fields ``GET /{waba_id}/phone_numbers`` shows."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    display_phone_number: str = Field(pattern=r"^\+?[0-9][0-9 \-()]*$")
    verified_name: str = "Test Business"
    quality_rating: Literal["GREEN", "YELLOW", "RED", "UNKNOWN"] = "GREEN"
    messaging_limit_tier: TierName = "TIER_1K"
    throughput_level: Literal["STANDARD", "HIGH", "COEXISTENCE"] = "STANDARD"
    status: Literal["PENDING", "CONNECTED", "DISCONNECTED", "FLAGGED", "RESTRICTED", "BANNED"] = Field(
        "PENDING", description="PENDING must be registered before it sends; CONNECTED sends from the start")
    code_verification_status: Literal["VERIFIED", "NOT_VERIFIED", "EXPIRED"] = "VERIFIED"
    platform_type: Literal["CLOUD_API", "ON_PREMISE", "NOT_APPLICABLE"] = "CLOUD_API"


class WabaSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str = "Test WhatsApp Business Account"
    timezone_id: str = "1"
    message_template_namespace: str | None = Field(None, description="default: derived from the id")
    numbers: list[NumberSeed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _namespace(self) -> WabaSeed:
        if self.message_template_namespace is None:
            digest = hashlib.sha256(self.id.encode()).hexdigest()
            self.message_template_namespace = f"{digest[:8]}_{digest[8:12]}_{digest[12:16]}_{digest[16:28]}"
        return self


class BusinessSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str = "Test Business"
    wabas: list[WabaSeed] = Field(default_factory=list)


class AccountCreate(BaseModel):
    """``POST /_sim/signup/accounts``: a Facebook user, their password and their business portfolios."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1)
    password: str = Field(min_length=1)
    name: str = "Test User"
    businesses: list[BusinessSeed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> AccountCreate:
        ids = [b.id for b in self.businesses]
        ids += [w.id for b in self.businesses for w in b.wabas]
        ids += [n.id for b in self.businesses for w in b.wabas for n in w.numbers]
        if len(ids) != len(set(ids)):
            raise ValueError("business, WABA and phone number ids must be unique")
        return self


class AccountPublic(BaseModel):
    """A stored account as the admin API shows it (no password)."""

    id: str
    email: str
    name: str
    businesses: list[BusinessSeed]


class SignupFault(BaseModel):
    """``POST /_sim/signup/faults``: the next ``times`` calls to ``step`` answer this Graph error."""

    model_config = ConfigDict(extra="forbid")

    step: Step
    code: int = 131000
    message: str | None = Field(None, description="default: the catalogue's message for the code")
    http_status: int | None = Field(None, ge=400, le=599, description="default: the catalogue's status, else 500")
    error_subcode: int | None = None
    times: int = Field(1, ge=1)
