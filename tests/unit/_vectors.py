"""Where Meta's test vectors live and how to read them (shared by the unit tests).

The vectors are externally written; they are copied into the repository at ``tests/data/meta`` (see its
README.md for their provenance and licences).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "data" / "meta"
WEBHOOKS = VECTORS / "webhooks"
SIGNATURES = VECTORS / "signatures"
WEBHOOK_FILES: list[Path] = sorted(WEBHOOKS.glob("*.json")) if WEBHOOKS.is_dir() else []
WEBHOOK_IDS: list[str] = [p.name for p in WEBHOOK_FILES]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


def webhook(name: str) -> dict[str, Any]:
    return load(WEBHOOKS / name)


def changes(body: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every (entry, change) pair of a raw body, in order."""
    return [(entry, change) for entry in body.get("entry", []) for change in entry.get("changes", [])]


def files_where(predicate: Any) -> list[Path]:
    return [p for p in WEBHOOK_FILES if predicate(load(p))]


def has_messages(body: dict[str, Any]) -> bool:
    return any(c["field"] == "messages" and c["value"].get("messages") for _, c in changes(body))


def has_statuses(body: dict[str, Any]) -> bool:
    return any(c["field"] == "messages" and c["value"].get("statuses") for _, c in changes(body))
