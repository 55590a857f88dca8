"""config.settings: environment parsing and the refusal of unsafe secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import CoreSettings, IngressSettings

REAL_SECRET_A = "3f9c1e7a5b2d4c6e8f0a1b3c5d7e9f21"
REAL_SECRET_B = "8a6c4e2f0b1d3f5a7c9e1b3d5f7a9c0e"
UNPREFIXED = {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No inherited AEROSTIC_* variable and no stray .env file may leak into a test."""
    for name in list(os.environ):
        if name.upper().startswith("AEROSTIC_") or name.upper() in UNPREFIXED:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _secrets(settings: IngressSettings) -> list[str]:
    return [s.get_secret_value() for s in settings.app_secrets]


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
    with pytest.raises(ValidationError, match="at most two app secrets"):
        IngressSettings()


@pytest.mark.parametrize("value", ["", " , "])
def test_no_secret_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", value)
    with pytest.raises(ValidationError, match="at least one app secret"):
        IngressSettings()


def _production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", "production")
    monkeypatch.setenv("AEROSTIC_VERIFY_TOKEN", "b7e1c0d9a8f64e2d")
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", f"{REAL_SECRET_A},{REAL_SECRET_B}")
    monkeypatch.setenv("AEROSTIC_PLATFORM_KEY", "5d0e7c2a9b4f4e61a3c8d1f0b7e2a9c4")
    monkeypatch.setenv("AEROSTIC_STATE_SECRET", "0c9a7e5d3b1f4a2c8e6d0b9a7c5e3f1d")


def test_production_with_real_secrets_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    settings = IngressSettings()
    assert not settings.is_development
    assert _secrets(settings) == [REAL_SECRET_A, REAL_SECRET_B]


@pytest.mark.parametrize(
    "secrets",
    [
        "aerostic-dev-app-secret",
        "changeme",
        "CHANGEME",
        "secret",
        "placeholder",
        f"{REAL_SECRET_A},change-me",
    ],
)
def test_production_refuses_placeholder_app_secret(monkeypatch: pytest.MonkeyPatch, secrets: str) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("AEROSTIC_APP_SECRETS", secrets)
    with pytest.raises(ValidationError, match="placeholder secrets are refused"):
        IngressSettings()


def test_production_refuses_default_app_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    monkeypatch.delenv("AEROSTIC_APP_SECRETS")
    with pytest.raises(ValidationError, match="placeholder secrets are refused"):
        IngressSettings()


def test_production_refuses_default_verify_token(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    monkeypatch.delenv("AEROSTIC_VERIFY_TOKEN")
    with pytest.raises(ValidationError, match="placeholder secrets are refused"):
        IngressSettings()


def test_production_refuses_default_platform_key(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    monkeypatch.delenv("AEROSTIC_PLATFORM_KEY")
    with pytest.raises(ValidationError, match="placeholder secrets are refused"):
        IngressSettings()


def test_development_accepts_the_dev_defaults() -> None:
    settings = IngressSettings()
    assert settings.is_development
    assert _secrets(settings) == ["aerostic-dev-app-secret"]


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
    with pytest.raises(ValidationError) as excinfo:
        IngressSettings()
    message = str(excinfo.value)
    for secret in (REAL_SECRET_A, REAL_SECRET_B, third):
        assert secret[:8] not in message
        assert secret[-8:] not in message


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


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = IngressSettings()
    with pytest.raises(ValidationError):
        settings.environment = "production"  # type: ignore[misc]
