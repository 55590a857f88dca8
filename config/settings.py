"""Process settings: one frozen pydantic-settings class per process kind.

Every value comes from the environment (prefix ``AEROSTIC_``) or an optional ``.env`` file;
``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL`` and ``REDIS_URL`` are also read without the prefix
because they are the conventional names. Settings are built in ``main()`` or a factory and
passed down; nothing here is instantiated at import time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.catalogue import WEBHOOK_MAX_BYTES

# Production fails closed: every process refuses to start on a missing or placeholder secret, naming the
# variable. Placeholders are the values below, anything containing a marker (the development defaults all
# start with "aerostic-dev"), and secrets shorter than MIN_SECRET_CHARS.
ENVIRONMENTS = ("development", "test", "production")
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "password", "default",
                                 "example", "test", "dev", "development", "postgres", "aerostic", "admin", "root"})
PLACEHOLDER_MARKERS = ("aerostic-dev", "changeme", "change-me", "change_me", "placeholder")
MIN_SECRET_CHARS = 16
META_GRAPH_URL = "https://graph.facebook.com"  # where the dispatcher sends tokens in production, and nowhere else
# Password hashing (tenants.passwords): scrypt's cost N, with r=8 and p=1. OWASP's minimum (2^17: 128 MiB and
# ~0.4 s per hash) is the default and the floor in production; tests may lower it; above 2^20 one login
# would need 1 GiB.
SCRYPT_N_OWASP = 2**17
SCRYPT_N_MIN = 2**10
SCRYPT_N_MAX = 2**20


def secret_refusal(variable: str, value: str, *, min_chars: int = MIN_SECRET_CHARS) -> str | None:
    """Why ``value`` may not be ``variable``'s value in production (never quoting it), or None."""
    text = value.strip()
    if not text:
        return f"{variable} is missing"
    lowered = text.lower()
    if lowered in PLACEHOLDER_SECRETS or any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return f"{variable} is a placeholder"
    if len(text) < min_chars:
        return f"{variable} is too short (at least {min_chars} characters)"
    return None


def database_refusal(url: str) -> str | None:
    """Why ``url`` may not be the production database's URL: no password, or a development one."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return "DATABASE_URL is not a URL"
    if not password:
        return "DATABASE_URL has no password"
    if secret_refusal("DATABASE_URL", password, min_chars=1) is not None:
        return "DATABASE_URL has a placeholder password"
    return None


class CoreSettings(BaseSettings):
    """Connection settings that every process needs."""

    model_config = SettingsConfigDict(
        env_prefix="AEROSTIC_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True,
        hide_input_in_errors=True,
    )

    # Required, no default: a process that does not know it runs in production must not guess development.
    environment: Literal["development", "test", "production"]
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("AEROSTIC_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: SecretStr = Field(
        SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/aerostic"),
        validation_alias=AliasChoices("AEROSTIC_DATABASE_URL", "DATABASE_URL"),
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias=AliasChoices("AEROSTIC_REDIS_URL", "REDIS_URL"),
    )
    topic_prefix: str = ""
    kafka_session_timeout_ms: int = 6000
    # How long an idle fetch waits at the broker. The embedded broker answers a waiting fetch only when this
    # runs out (measured: ~0.45 x the wait per hop), and every idle consumer costs it CPU at 1/wait fetches/s.
    # 40 ms against 20 (bench e2e, alternated): 21.4-21.9 ms of CPU a question at 40/s against 23.3-24.0, and
    # 9.8-10.0 against 10.6-10.7 at 150/s; a reply's p99 at 10-50/s 100-106 ms against 56-66.
    kafka_fetch_wait_ms: int = 40
    # The same for the groups off the reply path (broker.consumer.BACKGROUND_GROUPS: projector, media, signup,
    # templates, the campaign stages, tenants' webhooks), whose results may lag a fraction of a second: measured on
    # the embedded broker, an idle consumer of 6 partitions costs it ~31 ms CPU per second at 20 ms, ~12 at 100 ms.
    kafka_background_fetch_wait_ms: int = 250
    # Longest pause between two polls before the group gives the consumer's partitions away: a dispatcher
    # in the middle of a long Graph exchange (Embedded Signup) must keep them.
    kafka_max_poll_interval_ms: int = 600_000
    # Aerostic's one Meta app (rule 2): its id is public, its secret is not (ingress: webhook signatures;
    # dispatcher: the OAuth code exchange).
    meta_app_id: str = "100000000000001"
    graph_version: str = "v23.0"
    # scrypt's N for new password hashes (and for rehashing older ones at login); see SCRYPT_N_OWASP.
    password_scrypt_n: int = SCRYPT_N_OWASP
    # Tenants' webhooks may go to loopback addresses over http (the tests' receiver); refused in production.
    webhooks_allow_loopback: bool = False
    # The media store (mediastore/; the API and the dispatcher): the local filesystem, or an S3-compatible store.
    media_store: Literal["local", "s3"] = "local"
    media_dir: str = ".aerostic/media"
    media_s3_endpoint: str = "https://s3.amazonaws.com"
    media_s3_bucket: str = ""
    media_s3_region: str = "us-east-1"
    media_s3_access_key: SecretStr = SecretStr("")
    media_s3_secret_key: SecretStr = SecretStr("")
    media_retention_days: int = Field(90, ge=1, le=3650)  # a tenant without its own setting keeps media so long
    # Prometheus metrics (broker.metrics_http): GET /metrics on a port of the process's own, never the web server's
    # public one; 0 serves none. Loopback unless set: a container binds 0.0.0.0 and exposes it to the scraper only.
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # How much lower this process's CPU priority is than the others' (Unix niceness, added at start-up, before its
    # threads exist, so they all inherit it). The local stack gives the roles off a customer's reply path (the
    # projector, the webhook deliverer) 10: on cores shared by every process, a busy spell delays their work, not a
    # reply or a campaign's sends (see stack.launcher.BACKGROUND_NICE).
    cpu_nice: int = Field(0, ge=0, le=19)
    # Log lines (config.logs): one JSON object per line, or text; unset, JSON in production and text elsewhere.
    # Read by config.logs.configure before any settings exist (logging starts first); declared here so a wrong
    # value is refused at start-up and docker-compose's variable is a known one.
    log_format: Literal["json", "text"] | None = None

    @property
    def is_development(self) -> bool:
        """Only ``development`` and ``test`` accept the built-in development secrets."""
        return self.environment in ("development", "test")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @model_validator(mode="before")
    @classmethod
    def _environment_is_named(cls, data: Any) -> Any:
        """``AEROSTIC_ENVIRONMENT`` must be set, to one of ``ENVIRONMENTS`` (any case)."""
        if not isinstance(data, dict):
            return data
        value = data.get("environment")
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("AEROSTIC_ENVIRONMENT is not set: set it to development, test or production")
        normal = value.strip().lower() if isinstance(value, str) else value
        if normal not in ENVIRONMENTS:
            raise ValueError(f"AEROSTIC_ENVIRONMENT is {str(value)[:40]!r}: it must be development, test or production")
        return {**data, "environment": normal}

    @field_validator("password_scrypt_n")
    @classmethod
    def _scrypt_n(cls, n: int) -> int:
        if not (SCRYPT_N_MIN <= n <= SCRYPT_N_MAX and n & (n - 1) == 0):
            raise ValueError("AEROSTIC_PASSWORD_SCRYPT_N must be a power of two from 2^10 to 2^20")
        return n

    def refusals(self) -> list[str]:
        """Every reason this process must not start, each naming its variable: in production, missing or
        placeholder secrets. Subclasses add theirs; ``_fail_closed`` raises them all at once."""
        if not self.is_production:
            return []
        refusals = [database_refusal(self.database_url.get_secret_value())]
        if self.password_scrypt_n < SCRYPT_N_OWASP:
            refusals.append("AEROSTIC_PASSWORD_SCRYPT_N is below OWASP's minimum for scrypt (2^17) in production")
        if self.webhooks_allow_loopback:
            refusals.append("AEROSTIC_WEBHOOKS_ALLOW_LOOPBACK may not be set in production")
        if self.media_store == "s3":
            refusals += [secret_refusal("AEROSTIC_MEDIA_S3_SECRET_KEY", self.media_s3_secret_key.get_secret_value()),
                         None if self.media_s3_bucket else "AEROSTIC_MEDIA_S3_BUCKET is not set"]
        return [r for r in refusals if r]

    @model_validator(mode="after")
    def _fail_closed(self) -> Any:
        if refusals := self.refusals():
            raise ValueError("; ".join(refusals))
        return self


class IngressSettings(CoreSettings):
    """The webhook ingress and tenant API: Meta's verify token, the app secrets (two during rotation), the
    platform key and the console session lifetime."""

    verify_token: SecretStr = SecretStr("aerostic-dev-verify-token")
    app_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr("aerostic-dev-app-secret")])
    max_body_bytes: int = WEBHOOK_MAX_BYTES
    delivery_timeout_ms: int = 5000
    # Appends wait up to ``linger_ms`` to share a produce request, but go as soon as ``batch_records`` of one partition
    # wait (librdkafka's ``batch.num.messages``): measured in docs/perf/benchmark-log.md (session 40).
    linger_ms: int = Field(5, ge=0, le=100)
    batch_records: int = Field(16, ge=1, le=10_000)
    # The operator's key for /admin (creating tenants); never accepted on /v1.
    platform_key: SecretStr = SecretStr("aerostic-dev-platform-key")
    session_ttl_s: int = 12 * 3600
    # Embedded Signup: where the console is reached (the OAuth redirect_uri is built from it), where Meta's
    # dialog lives (the simulator locally), the Embedded Signup configuration, and the key that signs `state`.
    public_url: str = "http://127.0.0.1:8000"
    oauth_dialog_url: str = "https://www.facebook.com"
    meta_config_id: str = "200000000000001"
    state_secret: SecretStr = SecretStr("aerostic-dev-state-secret")
    state_ttl_s: int = 600
    # The tenant API and console (not /webhooks/meta: that is max_body_bytes): a body above this is refused
    # (413) before it is read; a few routes have their own (api.limits.ROUTE_LIMITS).
    api_max_body_bytes: int = 1024 * 1024
    # Campaign cost estimates: a JSON rate table {category: {country calling code or "*": USD}} (campaigns.cost).
    campaign_rates: str = ""
    # Requests a tenant may make on /v1, sustained per second and in one burst, unless its row in `tenants`
    # sets its own (api.ratelimit).
    api_rate_per_s: float = Field(200.0, gt=0)
    api_rate_burst: int = Field(400, ge=1)
    # The console's live feed (api.live): open streams per process and per tenant (past them: 503 / 429), events
    # a slow browser may have waiting before its stream is cut (it resumes with Last-Event-ID), recent events kept
    # for resumes, the longest a resume's gap may be read from Kafka, and the feed consumer's fetch wait.
    live_max_connections: int = Field(1000, ge=1)
    live_max_per_tenant: int = Field(100, ge=1)
    live_queue_events: int = Field(1000, ge=1)
    live_ring_events: int = Field(20_000, ge=1)
    live_gap_max_records: int = Field(50_000, ge=0)
    # 250 ms: its 30 partitions cost the broker ~8 ms CPU per second idle against ~28 at 50 ms (measured on Tansu,
    # which answers a waiting fetch only when the wait runs out); a browser sees an event up to that much later.
    live_fetch_wait_ms: int = Field(250, ge=1)

    @field_validator("app_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("max_body_bytes")
    @classmethod
    def _fits_the_topics(cls, size: int) -> int:
        if not 0 < size <= WEBHOOK_MAX_BYTES:
            raise ValueError(f"AEROSTIC_MAX_BODY_BYTES must be from 1 to {WEBHOOK_MAX_BYTES}: the topics that "
                             "carry a webhook accept no larger one (schemas.catalogue)")
        return size

    def refusals(self) -> list[str]:
        refusals = super().refusals()
        if not self.app_secrets:
            refusals.append("AEROSTIC_APP_SECRETS: at least one app secret is required")
        if len(self.app_secrets) > 2:
            refusals.append("AEROSTIC_APP_SECRETS: at most two app secrets may be active (current and previous)")
        if self.is_production:
            secrets = [*(("AEROSTIC_APP_SECRETS", s) for s in self.app_secrets),
                       ("AEROSTIC_VERIFY_TOKEN", self.verify_token), ("AEROSTIC_PLATFORM_KEY", self.platform_key),
                       ("AEROSTIC_STATE_SECRET", self.state_secret)]
            found = (secret_refusal(name, value.get_secret_value()) for name, value in secrets)
            refusals.extend(dict.fromkeys(r for r in found if r))
        return refusals


class StreamsSettings(CoreSettings):
    """The stream worker (router and conversation processor)."""

    directory_sync_timeout_s: float = 2.0


class CampaignsSettings(CoreSettings):
    """The campaign worker (expander, recipients, funnel, scheduler): its own process, so a campaign's backlog
    never delays an inbox reply."""

    # How often scheduled campaigns are looked for, and tier-held recipients retried.
    campaign_tick_s: float = 1.0
    campaign_tier_recheck_s: float = 30.0
    # How far ahead of its number's sends a campaign's audience is expanded (``streams.campaign_expander``): its
    # pages are generated as they are needed, not all at launch (which took the cores from the dispatcher).
    campaign_lead_s: float = Field(2.0, ge=0.5, le=3600)


class ProjectorSettings(CoreSettings):
    """The PostgreSQL projector."""

    batch_size: int = 500
    batch_wait_s: float = 0.05
    # A batch's first record waits this long for more (up to batch_size), so one transaction carries a whole fetch
    # or more: at 40 questions a second, 7.8 batches a second against 12.5 and 1.36 ms of the projector's CPU a
    # question against 1.74 (docs/perf/benchmark-log.md, session 47). The inbox's view is that much later.
    batch_settle_s: float = Field(0.1, ge=0, le=1)


class DispatcherSettings(CoreSettings):
    """The dispatcher: the only process that calls Meta and the only one that loads the vault keys."""

    worker_id: str = "dispatcher-1"
    graph_base_url: str = "https://graph.facebook.com"
    meta_app_secret: SecretStr = SecretStr("aerostic-dev-app-secret")
    request_timeout_s: float = 15.0
    vault_keys: SecretStr = SecretStr("")
    # Sends worked on at once, and the most Graph calls on the wire at once (one a connection). Meta answers a send in
    # about 0.1-0.35 s, so a number sending at rate r keeps r x that on the wire (Little's law): 300 for a 1,000 msg/s
    # number at 0.3 s. With 128 workers and 32 connections, `bench dispatch` with the simulator answering 200 ms late
    # got 0.156 of a 1,000 msg/s number's limit; with these, 0.949-0.973 at 250 ms (`rate1000_meta`), the calls let on
    # the wire sized for those that came in the last half second, at least 32 (`dispatcher.sender.gate_size`). A
    # number holds half a second of its rate in workers (`dispatcher.service.BULK_HOLD_S`), 500 at 1,000 msg/s: one
    # such number may take all 448 bulk workers (seven in eight). 1,024 workers sent as many, but a reply behind a
    # campaign on loopback waited longer (p99 44-122 ms in four runs against 42-58 with 512); raise both for a process
    # that carries several such numbers at once.
    concurrency: int = Field(512, ge=8, le=16384)
    http_connections: int = Field(512, ge=1, le=8192)
    bulk_buffer: int = 2000
    max_attempts: int = 6
    retry_base_s: float = 0.5
    retry_max_s: float = 60.0
    hold_recheck_s: float = 2.0
    account_cache_s: float = 5.0
    rate_limits: bool = True
    rate_margin: float = 0.03  # slots are (1 + margin) / rate apart: absorbs ~25 ms of jitter before Meta
    pair_interval_s: float = 6.0  # Meta: about one message per 6 s to one recipient, bursts allowed
    pair_burst: int = 10
    commit_interval_s: float = 0.2
    # How long the outcomes of bulk sends wait to be published together (interactive ones: 2 ms). Measured with
    # `aerostic bench campaign`, alternated: 10 ms against 2 took a tenth off the dispatcher's CPU per send and a
    # fifth off the broker's; 25 ms did no better than 10.
    bulk_linger_ms: int = Field(10, ge=0, le=1000)
    # How long a bulk send's Redis calls wait to share a pipeline with other sends' (``dispatcher.coalesce``); a
    # reply's go at once. 2 ms and more slowed a dispatcher without rate limits (claims hold a connection).
    redis_linger_ms: float = Field(1.0, ge=0, le=20)
    # Which outbound lanes this process sends: "all", or "interactive" (replies only: no campaign shares its event
    # loop, and other processes book a number's campaign slots only 4 ms ahead while it books replies,
    # ``dispatcher.ratelimit.REPLY_AHEAD_S``) beside "bulk" processes (campaigns, retries, account events, signups,
    # templates and media). Reply p99 behind a 20,000-send campaign on the same number, over idle (`bench dispatch`,
    # lanes alone): 1.9-2.9 with "all"; split 1.36-1.81 (median 1.47) in one spell, 1.72-3.60 (median 1.77) in a
    # slower one. Run at least one process of each, or one "all".
    lanes: Literal["all", "interactive", "bulk"] = "all"

    def refusals(self) -> list[str]:
        refusals = super().refusals()
        if not self.vault_keys.get_secret_value().strip():
            refusals.append("AEROSTIC_VAULT_KEYS is missing: the dispatcher needs it (make one with "
                            "`aerostic vault generate-key k1`)")
        if self.is_production:
            if refusal := secret_refusal("AEROSTIC_META_APP_SECRET", self.meta_app_secret.get_secret_value()):
                refusals.append(refusal)
            if self.graph_base_url.rstrip("/") != META_GRAPH_URL:
                refusals.append(f"AEROSTIC_GRAPH_BASE_URL must be {META_GRAPH_URL} in production (Meta tokens "
                                "go nowhere else)")
        return refusals


class AiSettings(CoreSettings):
    """The AI worker: ``ai.requests`` → ``ai.decisions``. The OpenAI-compatible model (OpenAI, vLLM, Ollama,
    LM Studio) is used for tenants whose provider is ``openai``; without a base URL they are handed to people."""

    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_api_key: SecretStr = SecretStr("")
    timeout_s: float = 8.0
    concurrency: int = 64

    def refusals(self) -> list[str]:
        refusals = super().refusals()
        if self.is_production and self.openai_base_url and (
                refusal := secret_refusal("AEROSTIC_OPENAI_API_KEY", self.openai_api_key.get_secret_value())):
            refusals.append(f"{refusal} (AEROSTIC_OPENAI_BASE_URL is set)")
        return refusals


class DelivererSettings(CoreSettings):
    """The webhook deliverer: tenants' own endpoints, signed, retried and logged (never Meta)."""

    webhook_timeout_s: float = Field(10.0, gt=0, le=60)  # a whole delivery, connect to last byte
    webhook_concurrency: int = Field(4, ge=1, le=64)  # deliveries in flight per endpoint
    # Retries: exponential back-off from base to max with jitter, for at most horizon after the delivery was
    # created; then a dead letter. An endpoint failing for disable_after (or answering 410) is disabled.
    webhook_retry_base_s: float = Field(30.0, gt=0)
    webhook_retry_max_s: float = Field(3 * 3600.0, gt=0)
    webhook_retry_horizon_s: float = Field(24 * 3600.0, gt=0)
    webhook_disable_after_s: float = Field(24 * 3600.0, gt=0)
    webhook_poll_s: float = Field(0.2, gt=0, le=5)  # how often redelivery requests are looked for (0.5 s at least)
    # The scheduler sleeps until the next pending delivery is due, or until its own intake, an attempt or a
    # redelivery wakes it; at most this long, so it sees what another process made due (an endpoint switched back on).
    webhook_idle_poll_s: float = Field(2.0, gt=0, le=60)
    webhook_log_retention_days: int = Field(7, ge=1, le=90)  # finished deliveries and their events are kept so long
