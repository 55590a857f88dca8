"""A tenant's conversation configuration as the stream workers use it: rules, hours, AI choice, waiting replies.

Read from PostgreSQL and cached per tenant under the version the API bumps in Redis on every
change (``redis_keys.tenant_config_version``), so a saved rule applies to the very next message
and an unchanged tenant costs one Redis read per batch. A stored rule or business hours that no
longer validate are skipped and logged, never a failure of the tenant's messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from automations.rules import BusinessHours, Rule, load_business_hours, load_rules
from automations.waiting import WaitingReplies, load_waiting
from config import redis_keys
from db.redis_wire import RedisWire, redis_wire
from db.tables import automation_rules, tenant_settings
from schemas.ai import DEFAULT_THRESHOLD


@dataclass(frozen=True)
class TenantConfig:
    """What the processor needs to know about a tenant."""

    tenant_id: str
    version: int
    rules: tuple[Rule, ...] = ()
    business_hours: BusinessHours | None = None
    ai_provider: str = "offline"  # offline | openai | off
    ai_threshold: float = DEFAULT_THRESHOLD
    waiting: WaitingReplies = field(default_factory=WaitingReplies)


async def config_versions(wire: RedisWire, tenant_ids: Iterable[str]) -> dict[str, int]:
    ordered = sorted(set(tenant_ids))
    values = await wire.mget([redis_keys.tenant_config_version(t) for t in ordered])
    return {t: int(v or 0) for t, v in zip(ordered, values, strict=True)}


async def bump_config_version(redis: Redis, tenant_id: str) -> None:
    """Tell every cache that the tenant's configuration changed (call after the change is committed)."""
    await redis.incr(redis_keys.tenant_config_version(tenant_id))


async def load_config(engine: AsyncEngine, tenant_id: str, version: int) -> TenantConfig:
    async with engine.connect() as conn:
        settings = (await conn.execute(select(tenant_settings).where(tenant_settings.c.tenant_id == tenant_id))).first()
        rows = (await conn.execute(select(automation_rules).where(automation_rules.c.tenant_id == tenant_id)
                                   .order_by(automation_rules.c.position, automation_rules.c.id))).all()
    rules = load_rules(({"id": str(r.id), "position": r.position, "name": r.name, "enabled": r.enabled,
                         "stop": r.stop, "trigger": r.trigger, "conditions": r.conditions,
                         "actions": r.actions} for r in rows), tenant_id=tenant_id)
    if settings is None:
        return TenantConfig(tenant_id, version, tuple(rules))
    hours = load_business_hours(settings.timezone, settings.business_hours, tenant_id=tenant_id)
    return TenantConfig(tenant_id, version, tuple(rules), hours, settings.ai_provider, settings.ai_threshold,
                        load_waiting(settings.waiting, tenant_id=tenant_id))


class ConfigCache:
    """Tenant configurations, reloaded when their version changes."""

    def __init__(self, redis: Redis, engine: AsyncEngine) -> None:
        self.engine = engine
        self.wire = redis_wire(redis)  # the version read of every batch, on the stream worker's one connection
        self._configs: dict[str, TenantConfig] = {}

    async def get_many(self, tenant_ids: Iterable[str]) -> dict[str, TenantConfig]:
        versions = await config_versions(self.wire, tenant_ids)
        for tenant_id, version in versions.items():
            cached = self._configs.get(tenant_id)
            if cached is None or cached.version != version:
                self._configs[tenant_id] = await load_config(self.engine, tenant_id, version)
        return {t: self._configs[t] for t in versions}
