"""One conversation's state as its single writer, the conversation processor, keeps it (JSON in Redis).

``version`` grows with every inbound message and every change of state, so an AI decision asked
for at one version is recognised as stale at another. ``history`` keeps the last few turns for
the AI's context; ``tags``/``attributes``/``opted_out`` are the contact's, as this conversation
last changed them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

HISTORY_TURNS = 6


@dataclass
class Conversation:
    """Mutable state of one conversation."""

    tenant_id: str | None = None
    state: str = "bot"  # bot | queued | agent | closed
    assignee_id: str | None = None
    team: str | None = None
    reason: str | None = None
    version: int = 0
    last_wamid: str | None = None
    last_inbound_at: float = 0.0
    window_until: float = 0.0
    profile_name: str | None = None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    opted_out: bool = False
    history: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_new(self) -> bool:
        """No message has been seen yet (the next inbound one is the first)."""
        return self.last_wamid is None

    def remember(self, role: str, text: str | None) -> None:
        if text:
            self.history = [*self.history, {"role": role, "text": text[:1000]}][-HISTORY_TURNS:]
