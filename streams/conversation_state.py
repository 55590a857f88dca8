"""One conversation's state as its single writer, the conversation processor, keeps it.

``version`` grows with every inbound message and every change of state, so an AI decision asked
for at one version is recognised as stale at another, and conversation events (``{key}:v{version}``)
never repeat an id. ``history`` keeps the last few turns for the AI's context; ``tags``/``attributes``/
``opted_out`` are the contact's, as this conversation last changed them. ``recent_inbound`` (the last
``RECENT_INBOUND`` messages handled, with their send times) and ``inbound_floor`` (the newest send time
among those that fell off the list) recognise a redelivered message; ``recent_commands`` the last
commands and AI answers applied. ``waiting_answered`` says whether the customer of a conversation waiting
for a person (``queued``, or ``agent`` not yet answered) heard from the business in this waiting episode
(the acknowledgement, or a person's reply); it is cleared when an episode begins. ``saves`` counts the
writes of the state and ``redis_run`` names the Redis server run it was last written to (see
``streams.conversation_store``, which keeps it in Redis and in PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HISTORY_TURNS = 6
RECENT_INBOUND = 64
RECENT_COMMANDS = 32


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
    queued_at: float = 0.0  # when it last began to wait for a person (epoch s)
    waiting_answered: bool = False
    recent_inbound: list[tuple[str, float]] = field(default_factory=list)  # (wamid, sent at), oldest first
    inbound_floor: float = 0.0
    recent_commands: list[str] = field(default_factory=list)
    saves: int = 0
    redis_run: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known.setdefault("waiting_answered", True)  # a state saved before acknowledgements: its episode is not new
        conv = cls(**known)
        conv.recent_inbound = [(str(wamid), float(at)) for wamid, at in conv.recent_inbound]
        return conv

    def to_dict(self) -> dict[str, Any]:
        """The fields as they are stored (lists shared with the state, not copied: serialise it at once)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def successor(self) -> Conversation:
        """A fresh state for the same key (its number moved to another tenant): the version goes on."""
        return Conversation(version=self.version, saves=self.saves, redis_run=self.redis_run)

    @property
    def is_new(self) -> bool:
        """No message has been seen yet (the next inbound one is the first)."""
        return self.last_wamid is None

    def remember(self, role: str, text: str | None) -> None:
        if text:
            self.history = [*self.history, {"role": role, "text": text[:1000]}][-HISTORY_TURNS:]

    def handled_inbound(self, wamid: str, at: float) -> bool:
        """The message ``wamid`` sent at ``at`` (epoch s) was handled: remembered, or older than all remembered."""
        return wamid == self.last_wamid or any(w == wamid for w, _ in self.recent_inbound) or at < self.inbound_floor

    def note_inbound(self, wamid: str, at: float) -> None:
        self.last_wamid = wamid
        kept = [*self.recent_inbound, (wamid, at)]
        for _, dropped_at in kept[:-RECENT_INBOUND]:
            self.inbound_floor = max(self.inbound_floor, dropped_at)
        self.recent_inbound = kept[-RECENT_INBOUND:]

    def handled_command(self, command_id: str) -> bool:
        return command_id in self.recent_commands

    def note_command(self, command_id: str) -> None:
        self.recent_commands = [*self.recent_commands, command_id][-RECENT_COMMANDS:]
