"""A tenant's teams: ``GET /v1/teams`` (admins): each team with its members and its waiting conversations.

A team exists while an agent belongs to it (``PUT /v1/agents/{user_id}``) or a conversation waits in its
queue (a rule's ``handoff``/``assign`` may name a team nobody is in yet). Waiting counts come from the
projection (conversations in state ``queued``); conversations queued without a team wait for anyone.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select, true

from api.auth import AdminDep
from api.deps import EngineDep
from api.team_models import TeamMember, TeamPublic, Teams
from db.tables import agents, conversations, users

router = APIRouter(prefix="/v1", tags=["agents"])

MAX_TEAMS = 500
MAX_MEMBERSHIPS = 5000  # (team, member) pairs read: 20 teams each for 250 agents


@router.get("/teams")
async def list_teams(principal: AdminDep, engine: EngineDep) -> Teams:
    """The tenant's teams by name, with their members and how many conversations wait in each queue."""
    tenant = principal.tenant_id
    team = func.jsonb_array_elements_text(agents.c.teams).table_valued("value").alias("team")
    memberships = (select(team.c.value.label("team"), users.c.id, users.c.email, agents.c.display_name)
                   .select_from(agents.join(users, users.c.id == agents.c.user_id).join(team, true()))
                   .where(agents.c.tenant_id == tenant, users.c.tenant_id == tenant, users.c.disabled_at.is_(None))
                   .order_by(team.c.value, users.c.email).limit(MAX_MEMBERSHIPS))
    waiting = (select(conversations.c.team, func.count().label("waiting"))
               .where(conversations.c.tenant_id == tenant, conversations.c.state == "queued")
               .group_by(conversations.c.team))
    async with engine.connect() as conn:
        members: dict[str, list[TeamMember]] = {}
        for row in await conn.execute(memberships):
            members.setdefault(row.team, []).append(TeamMember(user_id=str(row.id), email=row.email,
                                                               display_name=row.display_name))
        counts: dict[str | None, int] = {row.team: row.waiting for row in await conn.execute(waiting)}
    names = sorted(set(members) | {t for t in counts if t is not None})
    items = [TeamPublic(team=name, members=members.get(name, []), waiting=counts.get(name, 0))
             for name in names[:MAX_TEAMS]]
    return Teams(items=items, waiting_without_team=counts.get(None, 0), truncated=len(names) > MAX_TEAMS)

