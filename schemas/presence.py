"""An agent's presence change (``agents.presence``, keyed by tenant id): the console's live feed shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from schemas.events import Event

PresenceName = Literal["online", "away", "offline"]


class AgentPresence(Event):
    """A signed-in user set their presence (after it was written to Redis)."""

    kind: Literal["agent_presence"] = "agent_presence"
    tenant_id: str
    user_id: str
    presence: PresenceName
    at: datetime
