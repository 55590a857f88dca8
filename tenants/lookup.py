"""Read-side lookups of tenants and numbers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from config.settings import CoreSettings
from db.tables import phone_numbers


async def owner_of(settings: CoreSettings, phone_number_id: str) -> str | None:
    """The tenant id that owns ``phone_number_id``, or None."""
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(phone_numbers.c.tenant_id)
                                      .where(phone_numbers.c.phone_number_id == phone_number_id))).first()
    finally:
        await engine.dispose()
    return str(row.tenant_id) if row else None
