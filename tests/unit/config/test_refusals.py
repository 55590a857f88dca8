"""Every process refuses to start, exit status 2 and one clear line naming the variable, without
``AEROSTIC_ENVIRONMENT`` or, in production, with a placeholder secret; the simulator never runs in production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROCESSES = ["ingress", "streams", "projector", "ai", "dispatcher"]
REAL_DATABASE_URL = "postgresql+asyncpg://aerostic:Vx7q2LmZ9pR4tB1n@127.0.0.1:9/aerostic"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``aerostic <args>`` with none of our variables but ``env``, in an empty directory (no .env file)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AEROSTIC_", "METASIM_"))
                 and k not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    root = Path(__file__).resolve().parents[3]
    return subprocess.run([sys.executable, "-m", "aerostic", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**inherited, "PYTHONPATH": str(root), **env}, timeout=60, check=False)


def _refused(done: subprocess.CompletedProcess[str], command: str, *expected: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert done.stderr.startswith(f"aerostic {command}: refusing to start: "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


@pytest.mark.parametrize("command", PROCESSES)
def test_no_process_starts_without_its_environment(tmp_path: Path, command: str) -> None:
    _refused(_run(tmp_path, command), command, "AEROSTIC_ENVIRONMENT is not set: set it to development, test or "
                                               "production")


@pytest.mark.parametrize(("command", "expected"), [
    ("ingress", ["AEROSTIC_PLATFORM_KEY is a placeholder", "AEROSTIC_STATE_SECRET is a placeholder",
                 "AEROSTIC_APP_SECRETS is a placeholder", "AEROSTIC_VERIFY_TOKEN is a placeholder"]),
    ("streams", ["DATABASE_URL has no password"]),
    ("projector", ["DATABASE_URL has no password"]),
    ("ai", ["AEROSTIC_OPENAI_API_KEY is missing"]),
    ("dispatcher", ["AEROSTIC_META_APP_SECRET is a placeholder", "AEROSTIC_VAULT_KEYS is missing",
                    "AEROSTIC_GRAPH_BASE_URL must be https://graph.facebook.com"]),
])
def test_no_process_starts_in_production_with_development_secrets(tmp_path: Path, command: str,
                                                                   expected: list[str]) -> None:
    env = {"AEROSTIC_ENVIRONMENT": "production", "AEROSTIC_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
           "AEROSTIC_GRAPH_BASE_URL": "http://127.0.0.1:8090"}
    if command not in ("streams", "projector"):
        env["DATABASE_URL"] = REAL_DATABASE_URL
    _refused(_run(tmp_path, command, **env), command, *expected)


@pytest.mark.parametrize("env", [{"AEROSTIC_ENVIRONMENT": "production"}, {"METASIM_ENVIRONMENT": "Production"},
                                 {"AEROSTIC_ENVIRONMENT": "test", "METASIM_ENVIRONMENT": "production"}])
def test_the_simulator_never_starts_in_production(tmp_path: Path, env: dict[str, str]) -> None:
    _refused(_run(tmp_path, "metasim", "--port", "9", **env), "metasim",
             "the Meta simulator refuses to run in production")
