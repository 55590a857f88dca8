"""Reading the per-WABA template registry (``message_templates``; written by the projector only).

``Registry.check(tenant_id, waba_id, message)`` is the pre-send gate every sender uses (the send API, the
dispatcher for automations' and campaigns' template messages): it raises ``TemplateSendError`` for a
template message Meta would refuse. A template the registry does not hold is refused
(``template_not_found``, Meta's 132001) once the WABA's registry has been synced; before any sync the
registry cannot know, and the message goes on to Meta. Lookups are cached for ``ttl_s`` seconds, and with a
cache, concurrent lookups of one key share one read.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.shared_reads import SharedReads
from db.tables import message_templates, phone_numbers, template_syncs
from templates.model import Template
from templates.sending import TemplateSendError, validate_send

NAMESPACE = uuid.UUID("5b0d7a52-7c1e-4f4e-9a51-3c1f2f0e7a11")
CACHE_MAX = 10_000


def template_id(tenant_id: str, waba_id: str, name: str, language: str) -> str:
    """The registry id of one template in one language (the same everywhere it is computed)."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join((tenant_id, waba_id, name, language))))


def row_template(row: Any) -> Template:
    """The ``Template`` of a ``message_templates`` row."""
    return Template(name=row.name, language=row.language, category=row.category, status=row.status,
                    quality=row.quality, parameter_format=row.parameter_format, components=row.components or [])


def template_of(message: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]] | None:
    """``(name, language, components)`` of a Graph template message, None when it is not one."""
    template = message.get("template") if message.get("type") == "template" else None
    if not isinstance(template, dict):
        return None
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else language
    components = template.get("components")
    return (str(template.get("name", "")), str(code or ""),
            [c for c in components if isinstance(c, dict)] if isinstance(components, list) else [])


class Registry:
    """Cached lookups of templates and of whether a WABA's registry was synced."""

    def __init__(self, engine: AsyncEngine, *, ttl_s: float = 2.0) -> None:
        self.engine = engine
        self._reads: SharedReads[tuple[str, ...], Any] = SharedReads(ttl_s, size=CACHE_MAX)  # ttl 0: no sharing

    async def find(self, tenant_id: str, waba_id: str, name: str, language: str) -> Template | None:
        async def read() -> Template | None:
            async with self.engine.connect() as conn:
                row = (await conn.execute(select(message_templates).where(
                    message_templates.c.id == template_id(tenant_id, waba_id, name, language),
                    message_templates.c.tenant_id == tenant_id))).first()
            return row_template(row) if row is not None else None

        found: Template | None = await self._reads.get(("t", tenant_id, waba_id, name, language), read)
        return found

    async def synced(self, tenant_id: str, waba_id: str) -> bool:
        """Whether the WABA's registry was synced with Meta at least once."""
        async def read() -> bool:
            async with self.engine.connect() as conn:
                at = (await conn.execute(select(template_syncs.c.synced_at).where(
                    template_syncs.c.tenant_id == tenant_id, template_syncs.c.waba_id == waba_id))).scalar()
            return at is not None

        return bool(await self._reads.get(("s", tenant_id, waba_id), read))

    async def waba_of(self, tenant_id: str, phone_number_id: str) -> str | None:
        """The WABA of one of the tenant's numbers."""
        async def read() -> str | None:
            async with self.engine.connect() as conn:
                return (await conn.execute(select(phone_numbers.c.waba_id).where(
                    phone_numbers.c.tenant_id == tenant_id,
                    phone_numbers.c.phone_number_id == phone_number_id))).scalar()

        waba: str | None = await self._reads.get(("w", tenant_id, phone_number_id), read)
        return waba

    async def check(self, tenant_id: str, waba_id: str, message: dict[str, Any]) -> None:
        """Raise ``TemplateSendError`` when ``message`` (a Graph message object) is a template message Meta
        would refuse; anything else passes."""
        parts = template_of(message)
        if parts is None:
            return
        name, language, components = parts
        template = await self.find(tenant_id, waba_id, name, language)
        if template is None:
            if await self.synced(tenant_id, waba_id):
                raise TemplateSendError("template_not_found",
                                        f"no template {name} in language {language} in this WhatsApp Business "
                                        "Account (POST /v1/templates/sync if it was created elsewhere)", 132001)
            return
        validate_send(template, components)
