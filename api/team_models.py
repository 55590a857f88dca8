"""Response models of ``GET /v1/teams``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TeamMember(BaseModel):
    user_id: str
    email: str
    display_name: str | None


class TeamPublic(BaseModel):
    """A team, its members (by email) and the conversations waiting in its queue."""

    team: str
    members: list[TeamMember]
    waiting: int = Field(description="conversations queued for this team, waiting for a member")


class Teams(BaseModel):
    """Every team of the tenant, by name."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [{"team": "sales", "waiting": 2, "members": [
            {"user_id": "0f8c2d1e-7b6a-4c5d-9e8f-1a2b3c4d5e6f", "email": "ana@shop.example", "display_name": "Ana"}]}],
        "waiting_without_team": 1, "truncated": False}]})

    items: list[TeamPublic]
    waiting_without_team: int = Field(description="conversations queued for anyone, without a team")
    truncated: bool = Field(description="true when the tenant has more teams than listed (at most 500)")
