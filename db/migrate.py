"""Apply the Alembic migrations (``aerostic migrate``; also run by the local stack)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

INI = Path(__file__).with_name("alembic.ini")


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(INI))
    if url:
        config.attributes["url"] = url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: settings) to ``revision``."""
    command.upgrade(alembic_config(url), revision)
