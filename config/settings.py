"""Process settings: one frozen pydantic-settings class per process kind.

Every value comes from the environment (prefix ``AEROSTIC_``) or an optional ``.env`` file;
``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL`` and ``REDIS_URL`` are also read without the prefix
because they are the conventional names. Settings are built in ``main()`` or a factory and
passed down; nothing here is instantiated at import time.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "placeholder"})


class CoreSettings(BaseSettings):
    """Connection settings that every process needs."""

    model_config = SettingsConfigDict(
        env_prefix="AEROSTIC_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True,
        hide_input_in_errors=True,
    )

    environment: str = "development"
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
    # runs out (measured: ~0.45 x the wait per hop), and every idle consumer costs it CPU at 1/wait fetches/s:
    # 20 ms costs ~5 ms per hop and halves its idle CPU against 5-10 ms.
    kafka_fetch_wait_ms: int = 20
    # Longest pause between two polls before the group gives the consumer's partitions away: a dispatcher
    # in the middle of a long Graph exchange (Embedded Signup) must keep them.
    kafka_max_poll_interval_ms: int = 600_000
    # Aerostic's one Meta app (rule 2): its id is public, its secret is not (ingress: webhook signatures;
    # dispatcher: the OAuth code exchange).
    meta_app_id: str = "100000000000001"
    graph_version: str = "v23.0"

    @property
    def is_development(self) -> bool:
        """Only ``development`` and ``test`` accept the built-in development secrets."""
        return self.environment.lower() in ("development", "test")


class IngressSettings(CoreSettings):
    """The webhook ingress and tenant API: Meta's verify token, the app secrets (two during rotation), the
    platform key and the console session lifetime."""

    verify_token: SecretStr = SecretStr("aerostic-dev-verify-token")
    app_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr("aerostic-dev-app-secret")])
    max_body_bytes: int = 3 * 1024 * 1024
    delivery_timeout_ms: int = 5000
    linger_ms: int = 2
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
    # Requests a tenant may make on /v1, sustained per second and in one burst, unless its row in `tenants`
    # sets its own (api.ratelimit).
    api_rate_per_s: float = Field(200.0, gt=0)
    api_rate_burst: int = Field(400, ge=1)

    @field_validator("app_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> IngressSettings:
        if not self.app_secrets:
            raise ValueError("at least one app secret is required")
        if len(self.app_secrets) > 2:
            raise ValueError("at most two app secrets may be active (current and previous)")
        if not self.is_development:
            secrets = [*self.app_secrets, self.verify_token, self.platform_key, self.state_secret]
            if any(s.get_secret_value().lower() in PLACEHOLDER_SECRETS or "dev" in s.get_secret_value()
                   for s in secrets):
                raise ValueError("placeholder secrets are refused outside development")
        return self


class StreamsSettings(CoreSettings):
    """The stream workers (router and conversation processor)."""

    directory_sync_timeout_s: float = 2.0


class ProjectorSettings(CoreSettings):
    """The PostgreSQL projector."""

    kafka_fetch_wait_ms: int = 100  # off the reply path: PostgreSQL may lag a little, the broker idles
    batch_size: int = 500
    batch_wait_s: float = 0.05


class DispatcherSettings(CoreSettings):
    """The dispatcher: the only process that calls Meta and the only one that loads the vault keys."""

    worker_id: str = "dispatcher-1"
    graph_base_url: str = "https://graph.facebook.com"
    meta_app_secret: SecretStr = SecretStr("aerostic-dev-app-secret")
    request_timeout_s: float = 15.0
    vault_keys: SecretStr = SecretStr("")
    concurrency: int = 128
    # Connections to Graph: Meta answers in ~100-300 ms, so production needs many; on loopback against the
    # simulator fewer go faster (httpcore's pool scans every connection per request: 4 → 1,050 calls/s,
    # 24 → 370 calls/s measured here).
    http_connections: int = 32
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



class AiSettings(CoreSettings):
    """The AI worker: ``ai.requests`` → ``ai.decisions``. The OpenAI-compatible model (OpenAI, vLLM, Ollama,
    LM Studio) is used for tenants whose provider is ``openai``; without a base URL they are handed to people."""

    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_api_key: SecretStr = SecretStr("")
    timeout_s: float = 8.0
    concurrency: int = 64
