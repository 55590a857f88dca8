"""A tenant's conversation settings: ``/v1/settings/ai``, ``/v1/settings/small-talk``, ``/v1/settings/business-hours``,
``/v1/settings/waiting``.

Everyone of the tenant reads them; admins change them. Both live in one ``tenant_settings`` row,
created on the first change (until then the defaults apply: the offline scorer at a 0.70
threshold, UTC with no business hours). Every committed change bumps the tenant's configuration
version, so the conversation processor and the AI worker use it for the next message. Small talk
is the AI's replies to greetings, thanks and goodbyes (``ai.small_talk``: English phrases; the
defaults until changed; ``enabled: false`` hands them over like any unanswered message). Business
hours are checked when saved (an IANA time zone, ``HH:MM`` ranges, at most 10 a day): a bad value
is a 422 naming the field, never a failure when a message arrives. Waiting settings are the texts a
customer waiting for a person receives (``automations.waiting``, in ``tenant_settings.waiting``) with the
same business hours, checked more strictly when saved there (at most 4 ordered, non-overlapping ranges a day).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ai.small_talk import SmallTalk
from api.auth import AdminDep, TenantDep
from api.deps import EngineDep, RedisDep
from api.settings_models import AiSettings, WaitingSettings, WaitingSettingsUpdate
from automations.rules import BusinessHours, load_business_hours
from automations.waiting import load_waiting
from db.tables import tenant_settings
from tenants.config import bump_config_version

router = APIRouter(prefix="/v1/settings", tags=["settings"])


async def _row(engine: AsyncEngine, tenant_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(tenant_settings).where(tenant_settings.c.tenant_id == tenant_id))).first()


async def _save(engine: AsyncEngine, tenant_id: str, values: dict[str, Any]) -> None:
    """Upsert the tenant's row, changing only ``values`` (the other columns keep theirs or their defaults)."""
    stmt = insert(tenant_settings).values(tenant_id=tenant_id, **values)
    async with engine.begin() as conn:
        await conn.execute(stmt.on_conflict_do_update(index_elements=[tenant_settings.c.tenant_id],
                                                      set_={**values, "updated_at": func.now()}))


@router.get("/ai")
async def get_ai(principal: TenantDep, engine: EngineDep) -> AiSettings:
    """The AI provider and the confidence threshold of its replies."""
    row = await _row(engine, principal.tenant_id)
    return AiSettings() if row is None else AiSettings(provider=row.ai_provider, threshold=row.ai_threshold)


@router.put("/ai")
async def put_ai(body: AiSettings, principal: AdminDep, engine: EngineDep, redis: RedisDep) -> AiSettings:
    """Choose the AI provider and its threshold: a reply below it goes to an agent instead."""
    await _save(engine, principal.tenant_id, {"ai_provider": body.provider, "ai_threshold": body.threshold})
    await bump_config_version(redis, principal.tenant_id)
    return body


@router.get("/small-talk")
async def get_small_talk(principal: TenantDep, engine: EngineDep) -> SmallTalk:
    """The AI's replies to greetings, thanks and goodbyes."""
    row = await _row(engine, principal.tenant_id)
    return SmallTalk.model_validate(row.ai_small_talk) if row is not None and row.ai_small_talk else SmallTalk()


@router.put("/small-talk")
async def put_small_talk(body: SmallTalk, principal: AdminDep, engine: EngineDep, redis: RedisDep) -> SmallTalk:
    """Set the replies to greetings, thanks and goodbyes (or turn them off: such messages are then handed over)."""
    await _save(engine, principal.tenant_id, {"ai_small_talk": body.model_dump()})
    await bump_config_version(redis, principal.tenant_id)
    return body


@router.get("/business-hours")
async def get_business_hours(principal: TenantDep, engine: EngineDep) -> BusinessHours:
    """When the tenant is open, in its time zone (rules may trigger outside these hours)."""
    row = await _row(engine, principal.tenant_id)
    stored = None if row is None else load_business_hours(row.timezone, row.business_hours,
                                                          tenant_id=principal.tenant_id)
    return stored or BusinessHours()


@router.put("/business-hours")
async def put_business_hours(body: BusinessHours, principal: AdminDep, engine: EngineDep,
                             redis: RedisDep) -> BusinessHours:
    """Set the time zone and the opening hours per weekday."""
    hours = body.model_dump(mode="json")["hours"]
    await _save(engine, principal.tenant_id, {"timezone": body.timezone, "business_hours": hours})
    await bump_config_version(redis, principal.tenant_id)
    return body


@router.get("/waiting")
async def get_waiting(principal: TenantDep, engine: EngineDep) -> WaitingSettings:
    """What a customer waiting for a person hears (once per wait), and the business hours that choose the text."""
    row = await _row(engine, principal.tenant_id)
    if row is None:
        return WaitingSettings()
    replies = load_waiting(row.waiting, tenant_id=principal.tenant_id)
    return WaitingSettings(**replies.model_dump(), timezone=row.timezone,
                           hours={day: [(start, end) for start, end in ranges]
                                  for day, ranges in (row.business_hours or {}).items()})


@router.put("/waiting")
async def put_waiting(body: WaitingSettingsUpdate, principal: AdminDep, engine: EngineDep,
                      redis: RedisDep) -> WaitingSettings:
    """Set the acknowledgement texts, the two choices and the business hours (applied to the next message)."""
    hours = body.stored_hours()
    await _save(engine, principal.tenant_id, {"waiting": body.replies().model_dump(), "timezone": body.timezone,
                                              "business_hours": hours})
    await bump_config_version(redis, principal.tenant_id)
    return WaitingSettings(**body.replies().model_dump(), timezone=body.timezone,
                           hours={day: [(start, end) for start, end in ranges] for day, ranges in hours.items()})
