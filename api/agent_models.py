"""Request and response models of ``/v1/agents``: who takes conversations, how many, in which teams."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# Teams are stored comma-joined in Redis (``agents.assignment``), hence no commas.
Team = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[^,]+$")]
Presence = Literal["online", "away", "offline"]


class AgentUpdate(BaseModel):
    """``PUT /v1/agents/{user_id}``: how many open conversations the agent takes, and its teams.

    ``display_name`` is changed only when given (``null`` clears it).
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"display_name": "Sam", "capacity": 5, "teams": ["sales", "returns"]}]},
        extra="forbid")

    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    capacity: int = Field(ge=0, le=100)
    teams: list[Team] = Field(default_factory=list, max_length=20)

    @field_validator("teams")
    @classmethod
    def _unique(cls, teams: list[str]) -> list[str]:
        return list(dict.fromkeys(teams))


class AgentPublic(BaseModel):
    """An agent (any user of the tenant), its live presence and its open conversations."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "user_id": "c41d7e9a-6b2f-4e3d-8a1c-5f6e7d8c9b0a", "email": "sam@shop.example", "role": "agent",
                "display_name": "Sam", "capacity": 5, "teams": ["sales"], "presence": "online",
                "open_conversations": 2,
            },
        ]})

    user_id: str
    email: str
    role: str
    display_name: str | None
    capacity: int
    teams: list[str]
    presence: Presence
    open_conversations: int


class PresenceUpdate(BaseModel):
    """``PUT /v1/agents/me/presence``: repeat it as a heartbeat while the console is open."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "online"}]},
        extra="forbid")

    status: Presence


class PresenceStatus(BaseModel):
    """The presence as set; it lapses to ``offline`` after ``expires_in_s`` without a new heartbeat."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"status": "online", "expires_in_s": 90, "claimed": ["106540352242922:15551234567"]},
        ]})

    status: Presence
    expires_in_s: int | None
    claimed: list[str] = Field(description="queued conversations given to the agent by this call, oldest first")
