"""Retention of media: files past their tenant's retention are deleted, and all of a tenant's media with it.

``prune`` removes (file, then row) media older than the tenant's ``media_settings.retention_days`` (else the
default), a bounded batch at a time; ``purge_tenant`` removes every file and row of one tenant (the operator's
``aerostic media purge``, part of deleting a tenant's data).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from config.settings import CoreSettings
from db.tables import media, media_settings
from mediastore import open_store
from mediastore.store import ObjectStore

BATCH = 500
MAX_BATCHES = 200


async def prune(engine: AsyncEngine, store: ObjectStore, *, default_days: int, now: datetime | None = None) -> int:
    """Delete media past retention; returns how many (at most ``BATCH * MAX_BATCHES`` per call)."""
    now = now or datetime.now(UTC)
    days = func.coalesce(media_settings.c.retention_days, default_days)
    expired = (select(media.c.id, media.c.storage_key)
               .select_from(media.outerjoin(media_settings, media_settings.c.tenant_id == media.c.tenant_id))
               .where(media.c.created_at < now - days * text("interval '1 day'"))
               .order_by(media.c.created_at).limit(BATCH))
    removed = 0
    for _ in range(MAX_BATCHES):
        async with engine.connect() as conn:
            rows = (await conn.execute(expired)).all()
        for row in rows:
            if row.storage_key:
                await store.delete(row.storage_key)
        if rows:
            async with engine.begin() as conn:
                await conn.execute(delete(media).where(media.c.id.in_([r.id for r in rows])))
        removed += len(rows)
        if len(rows) < BATCH:
            break
    return removed


async def purge_tenant(engine: AsyncEngine, store: ObjectStore, tenant_id: str) -> int:
    """Delete every media file and row of ``tenant_id``; returns how many files the store held."""
    files = await store.delete_prefix(tenant_id)
    async with engine.begin() as conn:
        await conn.execute(delete(media).where(media.c.tenant_id == tenant_id))
        await conn.execute(delete(media_settings).where(media_settings.c.tenant_id == tenant_id))
    return files


async def run_with(settings: CoreSettings, tenant_id: str | None) -> int:
    """The operator's commands: purge ``tenant_id``'s media, or (None) prune every tenant's past retention."""
    engine = create_async_engine(settings.database_url.get_secret_value(), pool_size=1)
    store = open_store(settings)
    try:
        if tenant_id is not None:
            return await purge_tenant(engine, store, tenant_id)
        return await prune(engine, store, default_days=settings.media_retention_days)
    finally:
        await store.aclose()
        await engine.dispose()
