"""The registry's template of a campaign (its number's WABA, name and language), as ``templates.Template``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import message_templates, phone_numbers
from templates import Template


async def campaign_template(conn: AsyncConnection, tenant_id: str, phone_number_id: str, name: str,
                            language: str) -> Template | None:
    """The template as the registry knows it now, or None when the number's WABA has no such template."""
    t = message_templates.c
    row = (await conn.execute(
        select(t.name, t.language, t.category, t.status, t.quality, t.parameter_format, t.components)
        .join(phone_numbers, (phone_numbers.c.waba_id == t.waba_id) & (phone_numbers.c.tenant_id == t.tenant_id))
        .where(t.tenant_id == tenant_id, phone_numbers.c.phone_number_id == phone_number_id, t.name == name,
               t.language == language))).first()
    return None if row is None else Template.model_validate(dict(row._mapping))
