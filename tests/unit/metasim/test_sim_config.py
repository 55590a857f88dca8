"""The simulator's settings refuse production: its own METASIM_ENVIRONMENT or the deployment's AEROSTIC_ENVIRONMENT."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from metasim.state import SimConfig


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AEROSTIC_ENVIRONMENT", raising=False)
    monkeypatch.delenv("METASIM_ENVIRONMENT", raising=False)


@pytest.mark.parametrize(("variable", "value"), [("AEROSTIC_ENVIRONMENT", "production"),
                                                 ("AEROSTIC_ENVIRONMENT", " PRODUCTION "),
                                                 ("METASIM_ENVIRONMENT", "production")])
def test_production_is_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=f"refuses to run in production \\({variable}=production\\)"):
        SimConfig()


@pytest.mark.parametrize("value", [None, "development", "test"])
def test_elsewhere_it_runs(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is not None:
        monkeypatch.setenv("AEROSTIC_ENVIRONMENT", value)
        monkeypatch.setenv("METASIM_ENVIRONMENT", value)
    assert SimConfig().app_id == "100000000000001"
