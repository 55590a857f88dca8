"""deploy/prometheus.yml scrapes every Aerostic process of docker-compose.yml on the port it serves metrics on,
and the compose file exposes that port without publishing it (the ingress's public port serves no metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stack.launcher import METRICS_COMMANDS

ROOT = Path(__file__).resolve().parents[3]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SCRAPE: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())


def _metrics_services() -> dict[str, dict[str, Any]]:
    """The compose services running an Aerostic command that serves metrics."""
    return {name: service for name, service in COMPOSE["services"].items()
            if service.get("image") == "aerostic:latest" and len(service.get("command", [])) > 1
            and service["command"][1] in METRICS_COMMANDS}


def test_every_metrics_process_is_scraped_on_its_metrics_port() -> None:
    port = COMPOSE["x-aerostic"]["environment"]["AEROSTIC_METRICS_PORT"]
    targets = {target for job in SCRAPE["scrape_configs"] for config in job["static_configs"]
               for target in config["targets"]}
    services = _metrics_services()
    assert {service["command"][1] for service in services.values()} == METRICS_COMMANDS
    assert targets == {f"{name}:{port}" for name in services}


def test_the_metrics_port_is_exposed_not_published() -> None:
    port = COMPOSE["x-aerostic"]["environment"]["AEROSTIC_METRICS_PORT"]
    for name, service in _metrics_services().items():
        assert port in service.get("expose", []), name
        assert not any(str(mapping).split(":")[-1] == port for mapping in service.get("ports", [])), name
    assert COMPOSE["x-aerostic"]["environment"]["AEROSTIC_METRICS_HOST"] == "0.0.0.0"
    assert all(str(p).startswith("127.0.0.1:") for p in COMPOSE["services"]["prometheus"]["ports"])
