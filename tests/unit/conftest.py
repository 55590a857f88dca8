"""Fixtures of the pure unit tests (no network, broker or database)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit._vectors import VECTORS


@pytest.fixture
def vectors() -> Path:
    """The Meta vectors folder; fails (not skips) when it is missing."""
    assert (VECTORS / "webhooks").is_dir(), f"Meta vectors not found at {VECTORS} (set AEROSTIC_VECTORS)"
    return VECTORS


@pytest.fixture
def received_at() -> datetime:
    return datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
