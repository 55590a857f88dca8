"""The tenant's agents: ``/v1/agents`` (list, configure) and ``/v1/agents/me/presence`` (heartbeat).

Every user of a tenant can take conversations. The ``agents`` row holds what admins configure
(display name, capacity, teams) and is mirrored into the assigner's Redis state
(``agents.assignment.Assigner``) on every change and every heartbeat, so that state heals itself
if Redis loses it. Presence lives only in Redis and lapses after ``PRESENCE_TTL_S`` without a
heartbeat. An agent who is online takes queued conversations at once, oldest first, up to its
capacity: each one claimed is published as a ``claim`` command for the conversation processor.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from redis.asyncio import Redis
from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agents.assignment import Assigner
from api.agent_models import AgentPublic, AgentUpdate, Presence, PresenceStatus, PresenceUpdate
from api.auth import AdminDep, Principal, TenantDep
from api.commands import conversation_command, publish
from api.deps import EngineDep, ProducerDep, RedisDep, SettingsDep
from api.pages import Page, PageDep, keyset, page_of
from broker.producer import AsyncProducer, DeliveryError
from config import redis_keys
from config.settings import IngressSettings
from db.tables import agents, conversations, users
from schemas.catalogue import AGENTS_PRESENCE
from schemas.presence import AgentPresence

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["agents"])

PRESENCE_TTL_S = 60  # the console repeats its heartbeat well within this
DEFAULT_CAPACITY = 5  # the agents table's default, for users never configured
MAX_CLAIMS = 100  # capacity is at most 100: a bound on the claim loop


async def is_member(conn: AsyncConnection, tenant_id: str, user_id: str) -> bool:
    """Whether ``user_id`` is an enabled user of ``tenant_id`` (anyone of them can take conversations)."""
    query = select(exists().where(users.c.id == user_id, users.c.tenant_id == tenant_id, users.c.disabled_at.is_(None)))
    return bool((await conn.execute(query)).scalar())


def _roster(tenant_id: str) -> Any:
    return (select(users.c.id, users.c.email, users.c.role, users.c.created_at, agents.c.display_name,
                   agents.c.capacity, agents.c.teams)
            .select_from(users.outerjoin(agents, agents.c.user_id == users.c.id))
            .where(users.c.tenant_id == tenant_id, users.c.disabled_at.is_(None)))


async def _live(redis: Redis, tenant_id: str, user_ids: list[str]) -> list[tuple[str, int]]:
    """(presence, open conversations) of each agent, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.get(redis_keys.agent_presence(tenant_id, user_id))
            pipe.hget(redis_keys.agent(tenant_id, user_id), "open")
        values = await pipe.execute()
    return [(_text(values[i]) or "offline", int(values[i + 1] or 0)) for i in range(0, len(values), 2)]


def _text(value: object) -> str | None:
    return value.decode() if isinstance(value, bytes) else None if value is None else str(value)


def _public(row: Any, presence: str, open_count: int) -> AgentPublic:
    return AgentPublic(user_id=str(row.id), email=row.email, role=row.role, display_name=row.display_name,
                       capacity=DEFAULT_CAPACITY if row.capacity is None else row.capacity,
                       teams=list(row.teams or []), presence=presence, open_conversations=open_count)


@router.get("/agents")
async def list_agents(principal: TenantDep, engine: EngineDep, redis: RedisDep, page: PageDep) -> Page[AgentPublic]:
    """The tenant's agents, oldest first, with their capacity, teams, presence and open conversations."""
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(_roster(principal.tenant_id), users.c.created_at, users.c.id, page)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
    live = await _live(redis, principal.tenant_id, [str(r.id) for r in shown])
    return Page(items=[_public(row, presence, open_count) for row, (presence, open_count)
                       in zip(shown, live, strict=True)], next_cursor=cursor)


@router.put("/agents/me/presence", responses={403: {"description": "an API key has no presence"}})
async def put_presence(body: PresenceUpdate, principal: TenantDep, engine: EngineDep, redis: RedisDep,
                       producer: ProducerDep, settings: SettingsDep) -> PresenceStatus:
    """Set the signed-in user's presence; online, it takes waiting conversations up to its capacity."""
    if principal.user_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "presence belongs to a signed-in user, not an API key")
    async with engine.begin() as conn:
        await conn.execute(insert(agents).values(user_id=principal.user_id, tenant_id=principal.tenant_id)
                           .on_conflict_do_nothing(index_elements=[agents.c.user_id]))
        row = (await conn.execute(select(agents.c.capacity, agents.c.teams).where(
            agents.c.user_id == principal.user_id, agents.c.tenant_id == principal.tenant_id))).one()
    assigner = Assigner(redis)
    await assigner.configure(principal.tenant_id, principal.user_id, capacity=row.capacity, teams=list(row.teams))
    before = await assigner.presence(principal.tenant_id, principal.user_id)
    await assigner.set_presence(principal.tenant_id, principal.user_id, body.status, ttl_s=PRESENCE_TTL_S)
    if before != body.status:  # a change, not a heartbeat: the console's live feed shows it
        await _publish_presence(producer, settings, principal.tenant_id, principal.user_id, body.status)
    claimed = []
    if body.status == "online":
        claimed = await claim_queued(assigner, engine, producer, settings, principal, principal.user_id)
    return PresenceStatus(status=body.status, expires_in_s=None if body.status == "offline" else PRESENCE_TTL_S,
                          claimed=claimed)


async def _publish_presence(producer: AsyncProducer, settings: IngressSettings, tenant_id: str, user_id: str,
                            presence: Presence) -> None:
    """Append the change to ``agents.presence``; 503 when the broker did not acknowledge it."""
    event = AgentPresence(event_id=str(uuid.uuid4()), tenant_id=tenant_id, user_id=user_id, presence=presence,
                          at=datetime.now(UTC))
    try:
        await producer.send(AGENTS_PRESENCE.full_name(settings.topic_prefix), value=event.encode(),
                            key=tenant_id.encode())
    except DeliveryError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the presence change could not be published; retry",
                            headers={"Retry-After": "1"}) from exc


@router.put("/agents/{user_id}", responses={404: {"description": "the tenant has no such user"}})
async def put_agent(user_id: Annotated[uuid.UUID, Path()], body: AgentUpdate, principal: AdminDep,
                    engine: EngineDep, redis: RedisDep, producer: ProducerDep, settings: SettingsDep) -> AgentPublic:
    """Set a user's capacity, teams and display name; an online agent with more room takes waiting conversations."""
    tenant, agent_id = principal.tenant_id, str(user_id)
    values: dict[str, Any] = {"capacity": body.capacity, "teams": body.teams}
    if "display_name" in body.model_fields_set:
        values["display_name"] = body.display_name
    async with engine.begin() as conn:
        if not await is_member(conn, tenant, agent_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
        stmt = insert(agents).values(user_id=agent_id, tenant_id=tenant, **values)
        await conn.execute(stmt.on_conflict_do_update(index_elements=[agents.c.user_id],
                                                      set_={**values, "updated_at": func.now()}))
        row = (await conn.execute(_roster(tenant).where(users.c.id == agent_id))).one()
    assigner = Assigner(redis)
    await assigner.configure(tenant, agent_id, capacity=body.capacity, teams=body.teams)
    await claim_queued(assigner, engine, producer, settings, principal, agent_id)
    [(presence, open_count)] = await _live(redis, tenant, [agent_id])
    return _public(row, presence, open_count)


async def claim_queued(assigner: Assigner, engine: AsyncEngine, producer: AsyncProducer, settings: IngressSettings,
                       principal: Principal, agent_id: str) -> list[str]:
    """Give ``agent_id`` (if online with room) the waiting conversations of its teams, oldest first.

    Each claim reserves capacity and leaves the queue in Redis first; its command is then published.
    When publishing fails the claim is undone (capacity released, conversation back in its queue)
    and the request answers 503, so the heartbeat's retry claims it again.
    """
    claimed: list[str] = []
    for _ in range(MAX_CLAIMS):
        key = await assigner.claim(principal.tenant_id, agent_id)
        if key is None:
            break
        command = conversation_command(tenant_id=principal.tenant_id, key=key, action="claim", agent_id=agent_id,
                                       actor=principal.actor)
        try:
            await publish(producer, settings, command)
        except HTTPException:
            await _unclaim(assigner, engine, principal.tenant_id, agent_id, key)
            raise
        claimed.append(key)
    return claimed


async def _unclaim(assigner: Assigner, engine: AsyncEngine, tenant_id: str, agent_id: str, key: str) -> None:
    """Undo a claim whose command was not published: the conversation waits again, as long as it had."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(conversations.c.team, conversations.c.state_changed_at).where(
            conversations.c.tenant_id == tenant_id, conversations.c.key == key))).first()
    since = row.state_changed_at.timestamp() if row is not None and row.state_changed_at else time.time()
    team = row.team if row is not None else None
    await assigner.release(tenant_id, agent_id)
    await assigner.requeue(tenant_id, key, team, since)
    log.warning("claim of %s by agent %s undone: its command could not be published", key, agent_id)
