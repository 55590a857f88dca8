"""config.settings: environment parsing and the refusal of unsafe secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import (
    AiSettings,
    CoreSettings,
    DispatcherSettings,
    IngressSettings,
    ProjectorSettings,
    StreamsSettings,
)
from schemas.catalogue import WEBHOOK_MAX_BYTES

REAL_SECRET_A = "3f9c1e7a5b2d4c6e8f0a1b3c5d7e9f21"
REAL_SECRET_B = "8a6c4e2f0b1d3f5a7c9e1b3d5f7a9c0e"
UNPREFIXED = {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL"}
PROCESSES = [CoreSettings, IngressSettings, StreamsSettings, ProjectorSettings, DispatcherSettings, AiSettings]
REAL_DATABASE_URL = "postgresql+asyncpg://aerostic:Vx7q2LmZ9pR4tB1n@db:5432/aerostic"
VAULT_KEYS = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No inherited AEROSTIC_* variable and no stray .env file may leak into a test; development unless set."""
    for name in list(os.environ):
        if name.upper().startswith("AEROSTIC_") or name.upper() in UNPREFIXED:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", "development")
    monkeypatch.setenv("AEROSTIC_VAULT_KEYS", VAULT_KEYS)  # the dispatcher's, in every environment


def _secrets(settings: IngressSettings) -> list[str]:
    return [s.get_secret_value() for s in settings.app_secrets]


def _refused(cls: type[CoreSettings]) -> str:
    with pytest.raises(ValidationError) as excinfo:
        cls()
    return str(excinfo.value)


# --- the environment ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", PROCESSES)
def test_the_environment_is_required(monkeypatch: pytest.MonkeyPatch, cls: type[CoreSettings]) -> None:
    monkeypatch.delenv("AEROSTIC_ENVIRONMENT")
    assert "AEROSTIC_ENVIRONMENT is not set: set it to development, test or production" in _refused(cls)


@pytest.mark.parametrize("value", ["", "  ", "prod", "staging", "dev"])
def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", value)
    assert "AEROSTIC_ENVIRONMENT" in _refused(StreamsSettings)


@pytest.mark.parametrize(("value", "expected"), [("development", "development"), ("TEST", "test"),
                                                 (" Production ", "production")])
def test_the_environment_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", value)
    monkeypatch.setenv("DATABASE_URL", REAL_DATABASE_URL)
    settings = StreamsSettings()
    assert settings.environment == expected
    assert settings.is_production == (expected == "production")
    assert settings.is_development == (expected != "production")


def test_the_environment_may_be_passed_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AEROSTIC_ENVIRONMENT")
    assert CoreSettings(environment="test").environment == "test"


# --- app secrets -----------------------------------------------------------------------------------


def test_two_comma_separated_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", "a,b")
    assert _secrets(IngressSettings()) == ["a", "b"]


def test_secrets_are_trimmed_and_empty_parts_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", f" {REAL_SECRET_A} , ,{REAL_SECRET_B} ")
    assert _secrets(IngressSettings()) == [REAL_SECRET_A, REAL_SECRET_B]


def test_single_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", REAL_SECRET_A)
    assert _secrets(IngressSettings()) == [REAL_SECRET_A]


def test_three_secrets_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", "a,b,c")
    assert "AEROSTIC_APP_SECRETS: at most two app secrets" in _refused(IngressSettings)


@pytest.mark.parametrize("value", ["", " , "])
def test_no_secret_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", value)
    assert "AEROSTIC_APP_SECRETS: at least one app secret" in _refused(IngressSettings)


# --- production fails closed -----------------------------------------------------------------------

PRODUCTION = {
    "AEROSTIC_ENVIRONMENT": "production",
    "DATABASE_URL": REAL_DATABASE_URL,
    "AEROSTIC_VERIFY_TOKEN": "b7e1c0d9a8f64e2d",
    "AEROSTIC_APP_SECRETS": f"{REAL_SECRET_A},{REAL_SECRET_B}",
    "AEROSTIC_PLATFORM_KEY": "5d0e7c2a9b4f4e61a3c8d1f0b7e2a9c4",
    "AEROSTIC_STATE_SECRET": "0c9a7e5d3b1f4a2c8e6d0b9a7c5e3f1d",
    "AEROSTIC_META_APP_SECRET": "e4b1c8a2d7f94e3b9a0c6d1f8e2b7a55",
    "AEROSTIC_OPENAI_BASE_URL": "https://api.openai.com/v1",
    "AEROSTIC_OPENAI_API_KEY": "sk-proj-7Hq2vN9xLm4Rt8Wz",
}


def _production(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("cls", PROCESSES)
def test_production_with_real_secrets_is_accepted(monkeypatch: pytest.MonkeyPatch, cls: type[CoreSettings]) -> None:
    _production(monkeypatch)
    settings = cls()
    assert settings.is_production and not settings.is_development
    assert settings.password_scrypt_n == 2**17


def test_production_ingress_keeps_both_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    assert _secrets(IngressSettings()) == [REAL_SECRET_A, REAL_SECRET_B]


# (class, variable, refused values; None: the variable unset, so its development default or nothing)
SECRETS = [
    (IngressSettings, "AEROSTIC_APP_SECRETS", [None, "aerostic-dev-app-secret", "changeme", "CHANGEME", "PLACEHOLDER",
                                               f"{REAL_SECRET_A},change-me", "short-secret"]),
    (IngressSettings, "AEROSTIC_VERIFY_TOKEN", [None, "", "aerostic-dev-verify-token", "secret", "x" * 15]),
    (IngressSettings, "AEROSTIC_PLATFORM_KEY", [None, " ", "aerostic-dev-platform-key", "my-placeholder-key-123"]),
    (IngressSettings, "AEROSTIC_STATE_SECRET", [None, "aerostic-dev-state-secret", "Change-Me-Change-Me-Please"]),
    (DispatcherSettings, "AEROSTIC_META_APP_SECRET", [None, "", "aerostic-dev-app-secret", "changeme"]),
    (AiSettings, "AEROSTIC_OPENAI_API_KEY", [None, "", "PLACEHOLDER", "sk-short"]),
]


@pytest.mark.parametrize(("cls", "variable", "value"),
                         [(c, var, v) for c, var, values in SECRETS for v in values])
def test_production_refuses_a_missing_or_placeholder_secret_naming_it(
        monkeypatch: pytest.MonkeyPatch, cls: type[CoreSettings], variable: str, value: str | None) -> None:
    _production(monkeypatch)
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    message = _refused(cls)
    assert any(f"{variable} is {why}" in message for why in ("missing", "a placeholder", "too short")), message
    if value and value.strip() and "," not in value:
        assert value not in message  # the refusal never quotes a secret


def test_every_refusal_is_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", "production")
    message = _refused(IngressSettings)
    for expected in ("DATABASE_URL has no password", "AEROSTIC_APP_SECRETS is a placeholder",
                     "AEROSTIC_VERIFY_TOKEN is a placeholder", "AEROSTIC_PLATFORM_KEY is a placeholder",
                     "AEROSTIC_STATE_SECRET is a placeholder"):
        assert expected in message


@pytest.mark.parametrize(("url", "why"), [
    ("postgresql+asyncpg://postgres@127.0.0.1:5432/aerostic", "has no password"),  # the development default
    ("postgresql+asyncpg://aerostic@db:5432/aerostic", "has no password"),
    ("postgresql+asyncpg://aerostic:@db:5432/aerostic", "has no password"),
    ("postgresql+asyncpg://postgres:postgres@db:5432/aerostic", "has a placeholder password"),
    ("postgresql+asyncpg://aerostic:changeme@db:5432/aerostic", "has a placeholder password"),
    ("postgresql+asyncpg://aerostic:aerostic-dev-password@db/aerostic", "has a placeholder password"),
])
@pytest.mark.parametrize("cls", PROCESSES)
def test_production_refuses_a_database_without_a_real_password(
        monkeypatch: pytest.MonkeyPatch, cls: type[CoreSettings], url: str, why: str) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", url)
    assert f"DATABASE_URL {why}" in _refused(cls)


def test_development_accepts_the_dev_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for environment in ("development", "test"):
        monkeypatch.setenv("AEROSTIC_ENVIRONMENT", environment)
        settings = IngressSettings()
        assert settings.is_development
        assert _secrets(settings) == ["aerostic-dev-app-secret"]
        assert DispatcherSettings().meta_app_secret.get_secret_value() == "aerostic-dev-app-secret"


# --- the dispatcher -------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["development", "test", "production"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_the_dispatcher_needs_vault_keys(monkeypatch: pytest.MonkeyPatch, environment: str,
                                         value: str | None) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", environment)
    if value is None:
        monkeypatch.delenv("AEROSTIC_VAULT_KEYS")
    else:
        monkeypatch.setenv("AEROSTIC_VAULT_KEYS", value)
    assert "AEROSTIC_VAULT_KEYS is missing" in _refused(DispatcherSettings)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8090", "https://graph.facebook.com.evil.test",
                                 "http://graph.facebook.com", "https://graph.facebook.com/v23.0"])
def test_production_dispatcher_calls_only_meta(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("AEROSTIC_GRAPH_BASE_URL", url)
    assert "AEROSTIC_GRAPH_BASE_URL must be https://graph.facebook.com in production" in _refused(DispatcherSettings)
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", "test")  # the simulator is fine outside production
    assert DispatcherSettings().graph_base_url == url


@pytest.mark.parametrize("url", [None, "https://graph.facebook.com", "https://graph.facebook.com/"])
def test_production_dispatcher_accepts_meta(monkeypatch: pytest.MonkeyPatch, url: str | None) -> None:
    _production(monkeypatch)
    if url is not None:
        monkeypatch.setenv("AEROSTIC_GRAPH_BASE_URL", url)
    assert DispatcherSettings().graph_base_url.rstrip("/") == "https://graph.facebook.com"


# --- the AI worker --------------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", [None, ""])
def test_production_ai_worker_without_a_model_needs_no_key(monkeypatch: pytest.MonkeyPatch,
                                                           base_url: str | None) -> None:
    _production(monkeypatch)
    monkeypatch.delenv("AEROSTIC_OPENAI_API_KEY")
    if base_url is None:
        monkeypatch.delenv("AEROSTIC_OPENAI_BASE_URL")
    else:
        monkeypatch.setenv("AEROSTIC_OPENAI_BASE_URL", base_url)
    assert not AiSettings().openai_api_key.get_secret_value()


# --- password hashing cost ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2**17, 2**18, 2**20])
def test_production_accepts_owasp_or_stronger_password_hashing(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("AEROSTIC_PASSWORD_SCRYPT_N", str(n))
    assert IngressSettings().password_scrypt_n == n


@pytest.mark.parametrize("n", [2**14, 2**16])
def test_production_refuses_password_hashing_below_owasp(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("AEROSTIC_PASSWORD_SCRYPT_N", str(n))
    assert "AEROSTIC_PASSWORD_SCRYPT_N is below OWASP's minimum" in _refused(IngressSettings)
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", "test")
    assert IngressSettings().password_scrypt_n == n


@pytest.mark.parametrize("n", ["1000", "512", str(2**21), "0", "-1024"])
def test_password_hashing_cost_must_be_a_power_of_two_in_range(monkeypatch: pytest.MonkeyPatch, n: str) -> None:
    monkeypatch.setenv("AEROSTIC_PASSWORD_SCRYPT_N", n)
    assert "AEROSTIC_PASSWORD_SCRYPT_N must be a power of two from 2^10 to 2^20" in _refused(CoreSettings)


# --- the webhook size -----------------------------------------------------------------------------


def test_the_ingress_limit_defaults_to_what_the_topics_accept() -> None:
    assert IngressSettings().max_body_bytes == WEBHOOK_MAX_BYTES == 3 * 1024 * 1024


@pytest.mark.parametrize(("size", "accepted"), [(1024, True), (WEBHOOK_MAX_BYTES, True),
                                                (WEBHOOK_MAX_BYTES + 1, False), (0, False)])
def test_the_ingress_limit_may_not_exceed_the_topics(monkeypatch: pytest.MonkeyPatch, size: int,
                                                      accepted: bool) -> None:
    monkeypatch.setenv("AEROSTIC_MAX_BODY_BYTES", str(size))
    if accepted:
        assert IngressSettings().max_body_bytes == size
    else:
        assert "AEROSTIC_MAX_BODY_BYTES must be from 1 to" in _refused(IngressSettings)


# --- secrecy and parsing ----------------------------------------------------------------------------


def test_secrets_do_not_appear_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app:db-pass-9c1e@db:5432/aerostic")
    monkeypatch.setenv("REDIS_URL", "redis://:redis-pass-77ab@cache:6379/0")
    settings = IngressSettings()
    assert settings.database_url.get_secret_value().endswith("@db:5432/aerostic")

    for text in (repr(settings), str(settings), settings.model_dump_json()):
        for secret in (REAL_SECRET_A, REAL_SECRET_B, "b7e1c0d9a8f64e2d", "db-pass-9c1e", "redis-pass-77ab"):
            assert secret not in text
        assert "**********" in text


def test_refusal_message_does_not_reveal_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    third = "aaaabbbbccccddddeeeeffff00001111"
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", f"{REAL_SECRET_A},{REAL_SECRET_B},{third}")
    message = _refused(IngressSettings)
    for secret in (REAL_SECRET_A, REAL_SECRET_B, third):
        assert secret[:8] not in message
        assert secret[-8:] not in message


def test_production_refusal_does_not_reveal_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://aerostic:changeme@db-host-7f:5432/aerostic")
    message = _refused(StreamsSettings)
    assert "changeme" not in message and "db-host-7f" not in message


def test_kafka_bootstrap_servers_read_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    assert IngressSettings().kafka_bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert CoreSettings().kafka_bootstrap_servers == "broker-1:9092,broker-2:9092"


def test_prefixed_kafka_bootstrap_servers_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "plain:9092")
    monkeypatch.setenv("AEROSTIC_KAFKA_BOOTSTRAP_SERVERS", "prefixed:9092")
    assert IngressSettings().kafka_bootstrap_servers == "prefixed:9092"


def test_kafka_bootstrap_servers_default() -> None:
    assert IngressSettings().kafka_bootstrap_servers == "127.0.0.1:9092"


def test_settings_are_frozen() -> None:
    settings = IngressSettings()
    with pytest.raises(ValidationError):
        settings.environment = "production"  # type: ignore[misc]


def test_the_dispatchers_defaults_hold_a_fast_numbers_calls_on_the_wire() -> None:
    """Meta answers a send in about 0.1-0.35 s, so a 1,000 msg/s number keeps up to 350 calls on the wire, each held
    by a bulk worker. With 128 workers and 32 connections it got 0.156 of its limit when the simulator answered 200 ms
    late (``bench dispatch``, ``rate1000_meta``)."""
    from dispatcher.service import INTERACTIVE_SHARE

    settings = DispatcherSettings()
    assert settings.http_connections >= 1000 * 0.35
    assert settings.concurrency - settings.concurrency // INTERACTIVE_SHARE >= 1000 * 0.35 + 50  # and their slots'


@pytest.mark.parametrize(("name", "value"), [("AEROSTIC_CONCURRENCY", "4"), ("AEROSTIC_CONCURRENCY", "100000"),
                                             ("AEROSTIC_HTTP_CONNECTIONS", "0")])
def test_the_dispatchers_in_flight_bounds_are_bounded(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert name.removeprefix("AEROSTIC_").lower() in _refused(DispatcherSettings)
