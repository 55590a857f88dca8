"""Changes to one contact's tags and attributes, applied to what is stored (never a whole-row overwrite).

The conversation processor (through the projector), the tenant API and imports all change contacts, so each
write applies only its own change to the stored row: tags added keep their order and are never doubled,
attributes are merged key by key. The caller holds the contact's lock (``contacts.optout.lock``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import contacts

MAX_TAGS = 100
MAX_ATTRIBUTES = 100


class TooMany(ValueError):
    """A change would leave the contact with more tags or attributes than a contact may have."""


def merge_tags(existing: Iterable[str], add: Iterable[str] = (), remove: Iterable[str] = ()) -> list[str]:
    """``existing`` without ``remove``, then ``add`` that are new, in order, each once."""
    dropped = set(remove)
    merged: list[str] = []
    for tag in [*existing, *add]:
        if tag not in dropped and tag not in merged:
            merged.append(tag)
    return merged


async def _current(conn: AsyncConnection, tenant_id: str, wa_id: str) -> Any:
    return (await conn.execute(select(contacts.c.tags, contacts.c.attributes).where(
        contacts.c.tenant_id == tenant_id, contacts.c.wa_id == wa_id).with_for_update())).first()


async def _write(conn: AsyncConnection, tenant_id: str, wa_id: str, values: dict[str, Any]) -> None:
    stmt = insert(contacts).values(tenant_id=tenant_id, wa_id=wa_id, **values)
    await conn.execute(stmt.on_conflict_do_update(
        constraint="uq_contacts_tenant_wa_id",
        set_={**{k: stmt.excluded[k] for k in values}, "updated_at": func.now()}))


async def change_tags(conn: AsyncConnection, tenant_id: str, wa_id: str, *, add: Iterable[str] = (),
                      remove: Iterable[str] = (), limit: int | None = None) -> list[str]:
    """Add and remove tags of the contact (created if new); its tags after. ``TooMany`` past ``limit``."""
    row = await _current(conn, tenant_id, wa_id)
    tags = merge_tags(row.tags if row else [], add, remove)
    if limit is not None and len(tags) > limit:
        raise TooMany(f"a contact has at most {limit} tags")
    await _write(conn, tenant_id, wa_id, {"tags": tags})
    return tags


async def set_attributes(conn: AsyncConnection, tenant_id: str, wa_id: str, values: Mapping[str, str], *,
                         remove: Iterable[str] = (), limit: int | None = None) -> dict[str, str]:
    """Set (and remove) attributes of the contact (created if new); its attributes after."""
    row = await _current(conn, tenant_id, wa_id)
    dropped = set(remove)
    attributes = {k: v for k, v in (row.attributes if row else {}).items() if k not in dropped}
    attributes.update(values)
    if limit is not None and len(attributes) > limit:
        raise TooMany(f"a contact has at most {limit} attributes")
    await _write(conn, tenant_id, wa_id, {"attributes": attributes})
    return attributes
