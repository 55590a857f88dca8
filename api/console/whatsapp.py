"""What the console shows of a tenant's WhatsApp connection: the status line, the button, the numbers.

The input is the connection view of ``GET /v1/whatsapp/connection`` (``api.connection``),
as a model or as its JSON. The page renders it server-side, and its script re-renders the same
JSON when it changes, reading the labels below from the page so that both say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

LABELS = {
    "not_connected": "Not connected",
    "pending": "Connecting…",
    "connected": "WhatsApp connected",
    "failed": "Connection failed",
    "needs_reauth": "Reconnect needed",
    "disconnected": "Disconnected by Meta — reconnect",
}
CONNECT = "Connect WhatsApp"
RECONNECT = "Reconnect WhatsApp"
# States in which the tenant has (or had) a working connection: the button reconnects.
RECONNECT_STATES = frozenset({"connected", "needs_reauth", "disconnected"})
NO_DETAILS = "no details"


@dataclass(frozen=True)
class Status:
    """The status panel: ``label`` and, for a failed attempt, the step and Meta's message."""

    state: str
    label: str
    step: str | None = None
    error: str | None = None

    @property
    def connect_label(self) -> str:
        return RECONNECT if self.state in RECONNECT_STATES else CONNECT

    @property
    def text(self) -> str:
        """The status line as it reads on the page."""
        if self.state != "failed":
            return self.label
        return ": ".join(part for part in (self.label, self.step, self.error) if part)


def as_json(view: Any) -> dict[str, Any]:
    """The connection view as the JSON the endpoint answers (a pydantic model or a mapping)."""
    if isinstance(view, BaseModel):
        return view.model_dump(mode="json")
    if isinstance(view, Mapping):
        return dict(view)
    raise TypeError(f"not a connection view: {type(view).__name__}")


def status_of(view: Mapping[str, Any], *, awaiting: bool = False) -> Status:
    """The status panel of a connection view (as JSON).

    ``awaiting``: the browser just came back from Meta's dialog with an attempt the view does not
    know yet (the callback has handed it to the dispatcher; its record is on its way), so the
    connection is pending whatever the view says.
    """
    state = "pending" if awaiting else str(view.get("state") or "not_connected")
    label = LABELS.get(state, state.replace("_", " ").capitalize())
    if state != "failed":
        return Status(state, label)
    attempt = view.get("attempt") or {}
    return Status(state, label, step=attempt.get("step") or None, error=attempt.get("error_message") or NO_DETAILS)


def numbers_of(view: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The view's phone numbers, each with the fields the numbers table shows."""
    return [dict(n) for n in view.get("numbers") or []]


def script_labels() -> dict[str, Any]:
    """What the page's script needs to word a state as the server does."""
    return {"states": LABELS, "connect": CONNECT, "reconnect": RECONNECT, "reconnect_states": sorted(RECONNECT_STATES),
            "no_details": NO_DETAILS}
