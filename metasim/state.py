"""The simulator's state: numbers, tokens, templates, customers' windows, counters and request log.

A token grants one or more WABAs (``tokens``: token → WABA ids); Embedded Signup's users, codes and
issued tokens are in ``signup`` (``signup.py``), and its registered numbers join ``numbers``.

``Simulator`` is the one object behind ``app.state.sim``; it owns the limiters, the fault specs and
the webhook sender, and is usable in-process without HTTP (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from metasim.callbacks import CallbackSender, WebhookSettings
from metasim.customers import Customers
from metasim.faults import Faults
from metasim.graph_errors import CATALOGUE
from metasim.limits import THROUGHPUT_LEVELS, TIER_NAMES, Limits
from metasim.signup import CodeGrant, IssuedToken, Signup, new_token
from metasim.signup_models import AccountCreate, AccountPublic
from metasim.template_models import SimTemplate


class TemplateSettings(BaseModel):
    """How the simulated review and pacing behave (``PUT /_sim/templates/settings`` changes them live)."""

    model_config = ConfigDict(extra="forbid")

    review_s: float = Field(1.0, ge=0, description="seconds from creation to the review's webhook")
    decision: Literal["APPROVED", "REJECTED"] = "APPROVED"
    rejected_reason: str = "INVALID_FORMAT"
    creations_per_hour: int = Field(100, gt=0, description="Meta's limit per WABA")
    pacing_batch: int = Field(1, ge=0, description="sends of a paced template delivered before the rest are held")
    pacing_hold_s: float = Field(2.0, ge=0, description="how long held messages wait before delivery")


class SimConfig(BaseSettings):
    """One simulator process (environment prefix ``METASIM_``, nested with ``__``)."""

    model_config = SettingsConfigDict(env_prefix="METASIM_", env_nested_delimiter="__", frozen=True,
                                      extra="ignore", hide_input_in_errors=True)

    callback_url: str = "http://127.0.0.1:8000/webhooks/meta"
    app_secret: SecretStr = SecretStr("aerostic-dev-app-secret")
    webhooks: WebhookSettings = WebhookSettings()
    default_throughput: int = Field(80, gt=0, description="messages/s of a number registered without one")
    throughput_window: Literal["fixed", "sliding"] = "fixed"
    seed: int | None = None
    pair_burst: int = Field(45, gt=0)
    pair_interval_s: float = Field(6.0, gt=0)
    window_s: float = Field(86400.0, gt=0, description="customer service window")
    tier_window_s: float = Field(86400.0, gt=0, description="rolling window of the portfolio tier")
    tier_error_code: int = Field(131048, description="answer when the portfolio tier is full (Meta: undocumented)")
    callback_concurrency: int = Field(4, gt=0, description="webhook POSTs in flight (httpx slows down past ~8)")
    log_max: int = Field(50_000, gt=0, description="request log entries kept (oldest dropped)")
    media_url_ttl_s: float = Field(300.0, gt=0, description="how long a media URL from GET /{media-id} works")
    app_id: str = Field("100000000000001", min_length=1, description="the Meta app (OAuth client_id)")
    app_name: str = "Aerostic"
    config_ids: Annotated[list[str], NoDecode] = Field(
        ["200000000000001"], description="Embedded Signup configuration ids (env: comma-separated)")
    oauth_code_ttl_s: float = Field(600.0, gt=0, description="lifetime of OAuth codes and dialog sessions")
    templates: TemplateSettings = Field(default_factory=lambda: TemplateSettings())
    # Never in production: the simulator grants tokens to anyone and signs with whatever secret it is given.
    # Its own METASIM_ENVIRONMENT and the deployment's AEROSTIC_ENVIRONMENT (read as is: it imports nothing
    # of Aerostic's) are both checked.
    environment: str = "development"
    aerostic_environment: str = Field("", validation_alias="AEROSTIC_ENVIRONMENT")

    @field_validator("config_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _never_in_production(self) -> SimConfig:
        for variable, value in (("METASIM_ENVIRONMENT", self.environment),
                                ("AEROSTIC_ENVIRONMENT", self.aerostic_environment)):
            if value.strip().lower() == "production":
                raise ValueError(f"the Meta simulator refuses to run in production ({variable}=production): it "
                                 "stands in for Meta in tests and local stacks only")
        return self

    @field_validator("tier_error_code")
    @classmethod
    def _catalogued(cls, code: int) -> int:
        if code not in CATALOGUE:
            raise ValueError(f"{code} is not a Graph error code the simulator knows")
        return code


class NumberCreate(BaseModel):
    """``POST /_sim/numbers``: a business phone number, its WABA, portfolio and token."""

    model_config = ConfigDict(extra="forbid")

    phone_number_id: str = Field(min_length=1)
    waba_id: str = Field(min_length=1)
    business_id: str | None = Field(None, description="business portfolio; defaults to the WABA id")
    display_phone_number: str = "15550000000"
    token: str | None = None
    throughput: int | None = Field(None, gt=0, description="messages/s; 80, 1000 or 20 at Meta")
    level: Literal["STANDARD", "HIGH", "COEXISTENCE"] | None = None
    tier: int | None = Field(None, gt=0, description="portfolio tier; null = unlimited")

    @field_validator("tier", mode="before")
    @classmethod
    def _tier_name(cls, value: object) -> object:
        if isinstance(value, str) and value.upper() in TIER_NAMES:
            return TIER_NAMES[value.upper()]
        return value


class Template(BaseModel):
    """``POST /_sim/templates``: a message template and its parameter count per component key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    waba_id: str
    name: str
    language: str
    status: Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"] = "APPROVED"
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"] = "UTILITY"
    parameters: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description='parameters per component key, e.g. {"body": 2, "button:0": 1}')


def template_id() -> str:
    """A new template id shaped like Meta's (16 digits)."""
    return str(secrets.randbelow(9 * 10**15) + 10**15)


@dataclass(frozen=True, slots=True)
class Number:
    phone_number_id: str
    waba_id: str
    business_id: str
    display_phone_number: str
    throughput: int


@dataclass(slots=True)
class Counts:
    """What was accepted (recipient and marker counts cover accepted messages only) and refused."""

    accepted: int = 0
    by_recipient: Counter[str] = field(default_factory=Counter)
    by_marker: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    failed_statuses: Counter[str] = field(default_factory=Counter)
    inbound: int = 0


class Simulator:
    """Everything one simulated Meta knows; the Graph and admin routes read and change it."""

    def __init__(self, config: SimConfig, *, clock: Callable[[], float] = time.time,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.clock = clock
        self.numbers: dict[str, Number] = {}
        self.tokens: dict[str, set[str]] = {}
        self.revoked: set[str] = set()
        self.templates: dict[tuple[str, str, str], SimTemplate] = {}
        self.template_settings = config.templates.model_copy()
        self.template_sends: Counter[tuple[str, str, str]] = Counter()
        self.template_creations: dict[str, deque[float]] = {}
        self.marketing_limited: set[str] = set()
        self.background: set[asyncio.Task[Any]] = set()  # template reviews and their webhooks
        self.tiers: dict[str, int | None] = {}
        self.windows: dict[tuple[str, str], float] = {}
        self.undeliverable: set[str] = set()
        self.customers = Customers()
        self.log: deque[dict[str, Any]] = deque(maxlen=config.log_max)
        self.signup = Signup(config.oauth_code_ttl_s, self.now, log_max=config.log_max)
        self.counts = Counts()
        self.limits = self._new_limits()
        self.faults = Faults(config.seed)
        self.webhooks = CallbackSender(config.callback_url, config.app_secret.get_secret_value(), config.webhooks,
                                       concurrency=config.callback_concurrency, seed=config.seed,
                                       transport=transport)

    def now(self) -> float:
        return self.clock()

    def _new_limits(self) -> Limits:
        return Limits(pair_burst=self.config.pair_burst, pair_interval_s=self.config.pair_interval_s,
                      tier_window_s=self.config.tier_window_s, throughput_window=self.config.throughput_window)

    # --- registry -------------------------------------------------------------------------------

    def add_number(self, spec: NumberCreate) -> Number:
        throughput = spec.throughput or THROUGHPUT_LEVELS.get(spec.level or "", self.config.default_throughput)
        number = Number(spec.phone_number_id, spec.waba_id, spec.business_id or spec.waba_id,
                        spec.display_phone_number, throughput)
        self.numbers[number.phone_number_id] = number
        if spec.token:
            self.add_token(spec.token, spec.waba_id)
        if "tier" in spec.model_fields_set or number.business_id not in self.tiers:
            self.tiers[number.business_id] = spec.tier
        return number

    def add_token(self, token: str, waba_id: str, *, replace: bool = False) -> None:
        """Grant ``token`` the WABA's numbers too; ``replace`` revokes the WABA's other tokens."""
        if replace:
            self.revoked.update(t for t, wabas in self.tokens.items() if waba_id in wabas and t != token)
        self.tokens.setdefault(token, set()).add(waba_id)
        self.revoked.discard(token)

    def revoke(self, token: str) -> bool:
        if token not in self.tokens:
            return False
        self.revoked.add(token)
        return True

    # --- Embedded Signup ------------------------------------------------------------------------

    def seed_account(self, account: AccountCreate) -> AccountPublic:
        """Store a signup user (replacing one of that email); their CONNECTED numbers can send at once."""
        user, dropped = self.signup.seed(account)
        for phone_number_id in dropped:
            self.numbers.pop(phone_number_id, None)
        for number in (n for b in user.businesses for w in b.wabas for n in w.numbers):
            if number.status == "CONNECTED":
                self.connect_number(number.id)
        return user.public()

    def connect_number(self, phone_number_id: str) -> Number:
        """Make a signup number a sending number: CONNECTED, throughput of its level, tier of its portfolio."""
        entry = self.signup.numbers[phone_number_id]
        entry.seed.status = "CONNECTED"
        return self.add_number(NumberCreate(
            phone_number_id=phone_number_id, waba_id=entry.waba_id, business_id=entry.business_id,
            display_phone_number=re.sub(r"\D", "", entry.seed.display_phone_number),
            level=entry.seed.throughput_level, tier=TIER_NAMES[entry.seed.messaging_limit_tier]))

    def issue_token(self, grant: CodeGrant) -> IssuedToken:
        """A new never-expiring token for a redeemed code, granting the chosen WABA (if any) and business."""
        wabas = (grant.waba_id,) if grant.waba_id else ()
        issued = IssuedToken(new_token(), grant.user.id, (grant.business_id,), wabas, self.now())
        self.signup.issued[issued.token] = issued
        self.tokens[issued.token] = set(wabas)
        return issued

    def add_template(self, template: Template | SimTemplate) -> SimTemplate:
        """Store a template (one given by parameter counts is checked on counts only)."""
        if isinstance(template, Template):
            template = SimTemplate(id=template_id(), created_at=self.now(), **template.model_dump())
        self.templates[(template.waba_id, template.name, template.language)] = template
        return template

    def template(self, waba_id: str, name: str, language: str) -> SimTemplate | None:
        return self.templates.get((waba_id, name, language))

    def template_by_id(self, template_id: str) -> SimTemplate | None:
        return next((t for t in self.templates.values() if t.id == template_id), None)

    def tier_of(self, business_id: str) -> int | None:
        return self.tiers.get(business_id)

    # --- customers ------------------------------------------------------------------------------

    def record_inbound(self, phone_number_id: str, wa_id: str, at: float) -> None:
        """A customer wrote at ``at`` (epoch s): the service window runs from their latest message."""
        key = (phone_number_id, wa_id)
        self.windows[key] = max(at, self.windows.get(key, at))
        self.counts.inbound += 1

    def window_open(self, phone_number_id: str, wa_id: str, now: float) -> bool:
        last = self.windows.get((phone_number_id, wa_id))
        return last is not None and now - last < self.config.window_s

    # --- accounting -----------------------------------------------------------------------------

    def count_accepted(self, wa_id: str, marker: str | None) -> None:
        self.counts.accepted += 1
        self.counts.by_recipient[wa_id] += 1
        if marker is not None:
            self.counts.by_marker[marker] += 1

    def summary(self) -> dict[str, Any]:
        """The body of ``GET /_sim/counts``."""
        counts = self.counts
        return {
            "accepted": counts.accepted,
            "by_recipient": dict(counts.by_recipient),
            "by_marker": dict(counts.by_marker),
            "errors": dict(counts.errors),
            "failed_statuses": dict(counts.failed_statuses),
            "inbound": counts.inbound,
            "per_second": {number: {str(second): n for second, n in seconds.items()}
                           for number, seconds in self.limits.throughput.per_second.items()},
            "webhooks": {**asdict(self.webhooks.counters), "pending": self.webhooks.pending},
        }

    def requests(self, phone_number_id: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        return [entry for entry in self.log
                if (phone_number_id is None or entry["phone_number_id"] == phone_number_id)
                and (since is None or entry["time"] >= since)]

    def reset(self) -> None:
        """Forget the logs, counters and limiter state; keep numbers, tokens, templates, windows, faults."""
        self.log.clear()
        self.signup.log.clear()
        self.counts = Counts()
        self.limits = self._new_limits()
        self.webhooks.counters = type(self.webhooks.counters)()
