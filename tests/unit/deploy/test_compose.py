"""docker-compose.yml runs commands the CLI has, with settings the processes read.

For every service that runs the Aerostic image: its command parses with the CLI's own parser, and each
environment variable it sets is a field of the settings class that command builds (pydantic-settings
ignores unknown variables, so a misspelt one would silently change nothing). Also: the secrets only the
dispatcher may hold, the start-up order, and that Redis and PostgreSQL keep their data.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, BaseModel
from pydantic_settings import BaseSettings

import config.settings
import metasim.state
from aerostic.cli import build_parser

ROOT = Path(__file__).resolve().parents[3]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
IMAGE = "aerostic:latest"

SETTINGS_CLASSES: dict[str, type[BaseSettings]] = {
    cls.__name__: cls for module in (config.settings, metasim.state) for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, BaseSettings) and cls is not BaseSettings}
# What aerostic/cli.py builds for each subcommand (checked against the handlers' source below).
EXPECTED_SETTINGS = {"ingress": "IngressSettings", "streams": "StreamsSettings", "campaigns": "CampaignsSettings",
                     "projector": "ProjectorSettings",
                     "dispatcher": "DispatcherSettings", "ai": "AiSettings", "deliverer": "DelivererSettings",
                     "migrate": "CoreSettings",
                     "topics create": "CoreSettings", "metasim": "SimConfig"}
# Backing services a command cannot start without.
NEEDS = {"migrate": {"postgres", "redis"}, "topics create": {"kafka"}, "ingress": {"kafka", "postgres", "redis"},
         "dispatcher": {"kafka", "postgres", "redis"}, "streams": {"kafka"}, "projector": {"kafka", "postgres"},
         "ai": {"kafka"}, "deliverer": {"kafka", "postgres"}, "metasim": set()}
DISPATCHER_ONLY = {"AEROSTIC_VAULT_KEYS", "AEROSTIC_META_APP_SECRET"}


def _parse(command: list[str]) -> tuple[argparse.Namespace | None, str]:
    """The CLI's parse of ``command`` (``aerostic …``), or None and argparse's complaint."""
    if not command or command[0] != "aerostic":
        return None, f"does not run aerostic: {command}"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.suppress(SystemExit):
        return build_parser().parse_args(command[1:]), ""
    return None, stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue() else "no parse"


def _subcommand(args: argparse.Namespace) -> str:
    return " ".join(str(part) for part in (args.command, getattr(args, "action", None)) if part)


def settings_class(args: argparse.Namespace) -> type[BaseSettings]:
    """The settings class the command's handler builds (``XSettings()`` in its source)."""
    built = set(re.findall(r"\b([A-Z]\w*)\(\)", inspect.getsource(args.func))) & set(SETTINGS_CLASSES)
    assert len(built) == 1, f"{_subcommand(args)} builds {built or 'no settings'}"
    return SETTINGS_CLASSES[built.pop()]


def env_names(cls: type[BaseSettings]) -> tuple[set[str], set[str]]:
    """The variables ``cls`` reads (upper case) and the prefixes of its nested ones (``METASIM_WEBHOOKS__``)."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    delimiter = cls.model_config.get("env_nested_delimiter")
    names: set[str] = set()
    nested: set[str] = set()
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{name}".upper())
        if delimiter and isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            nested.add(f"{prefix}{name}{delimiter}".upper())
    return names, nested


def aerostic_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose["services"].items()
            if service.get("image") == IMAGE or "build" in service}


def compose_problems(compose: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    services = compose["services"]
    for name, service in aerostic_services(compose).items():
        args, complaint = _parse(list(service.get("command") or []))
        if args is None:
            problems.append(f"{name}: command {service.get('command')} does not parse: {complaint}")
            continue
        sub = _subcommand(args)
        cls = settings_class(args)
        known, nested = env_names(cls)
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
        for variable in sorted(environment):
            upper = variable.upper()
            if upper not in known and not any(upper.startswith(p) for p in nested):
                problems.append(f"{name}: {variable} is not a setting of {cls.__name__} ({sub})")
            if upper in DISPATCHER_ONLY and sub != "dispatcher":
                problems.append(f"{name}: {variable} is for the dispatcher only")
        depends = service.get("depends_on") or {}
        for backing in sorted(NEEDS.get(sub, {"kafka", "postgres", "redis"})):
            condition = depends.get(backing, {}).get("condition") if isinstance(depends, dict) else None
            if condition != "service_healthy":
                problems.append(f"{name}: does not wait for {backing} to be healthy")
        long_running = service.get("restart", "no") != "no"
        if long_running and sub != "metasim":
            for setup in ("migrate", "topics"):
                if setup not in services or depends.get(setup, {}).get("condition") != \
                        "service_completed_successfully":
                    problems.append(f"{name}: starts before {setup} completed")
    return problems


def test_every_aerostic_service_runs_a_known_command_with_known_settings() -> None:
    assert compose_problems(COMPOSE) == []


def test_every_process_is_deployed() -> None:
    deployed = set()
    for service in aerostic_services(COMPOSE).values():
        args, _ = _parse(list(service["command"]))
        assert args is not None
        deployed.add(_subcommand(args))
    assert set(EXPECTED_SETTINGS) <= deployed


@pytest.mark.parametrize(("subcommand", "expected"), sorted(EXPECTED_SETTINGS.items()))
def test_the_cli_builds_the_expected_settings(subcommand: str, expected: str) -> None:
    args = build_parser().parse_args(subcommand.split())
    assert settings_class(args).__name__ == expected


@pytest.mark.parametrize(("service", "change", "expected"), [
    ("streams", {"command": ["aerostic", "stream"]}, "does not parse: aerostic: error: argument command"),
    ("topics", {"command": ["aerostic", "topics"]}, "does not parse"),
    ("ingress", {"environment": {"AEROSTIC_VERIFY_TOKN": "x"}}, "AEROSTIC_VERIFY_TOKN is not a setting of "
                                                                  "IngressSettings"),
    ("ai", {"environment": {"AEROSTIC_OPENAI_MODEL": "m", "AEROSTIC_GRAPH_BASE_URL": "x"}},
     "AEROSTIC_GRAPH_BASE_URL is not a setting of AiSettings"),
    ("projector", {"environment": {"DATABASE_URL": "x", "AEROSTIC_VAULT_KEYS": "k"}}, "dispatcher only"),
    ("metasim", {"environment": {"AEROSTIC_APP_SECRETS": "x"}}, "not a setting of SimConfig"),
    ("migrate", {"depends_on": {"postgres": {"condition": "service_healthy"}}}, "migrate: does not wait for redis"),
    ("dispatcher", {"depends_on": {"kafka": {"condition": "service_healthy"}}}, "starts before migrate"),
])
def test_the_compose_check_can_fail(service: str, change: dict[str, Any], expected: str) -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["services"][service].update(change)
    problems = compose_problems(broken)
    assert any(expected in line for line in problems), problems


def test_nested_and_aliased_settings_are_known() -> None:
    names, nested = env_names(config.settings.CoreSettings)
    assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL", "AEROSTIC_TOPIC_PREFIX"} <= names
    names, nested = env_names(metasim.state.SimConfig)
    assert "METASIM_CALLBACK_URL" in names and "METASIM_WEBHOOKS__" in nested


def _named_volume_at(service: dict[str, Any], target: str) -> str | None:
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target and "/" not in source and source in (COMPOSE.get("volumes") or {}):
            return source
    return None


def test_redis_and_postgres_keep_their_data() -> None:
    redis = COMPOSE["services"]["redis"]
    command = [str(part) for part in redis.get("command", [])]
    assert "--appendonly" in command and command[command.index("--appendonly") + 1] == "yes", command
    assert _named_volume_at(redis, "/data"), "redis needs a named volume at /data"
    assert _named_volume_at(COMPOSE["services"]["postgres"], "/var/lib/postgresql/data")
    assert _named_volume_at(COMPOSE["services"]["kafka"], "/var/lib/kafka/data")
