"""Meta's WhatsApp id adopted: a send's answer (``contacts[].wa_id``) names the recipient's canonical id.

A number as entered is not always the id Meta knows the account by (a Brazilian mobile registered before
the ninth digit answers as ``55 DD XXXXXXXX``). When a send to ``sent_to`` is accepted for another ``wa_id``,
the contact stored under ``sent_to`` takes Meta's id and keeps the number it was entered with (``e164``),
so an import of that number finds it again (``contacts.importer``) and the customer's own messages, which
arrive under Meta's id, reach the same contact. When a contact under Meta's id exists already (the customer
wrote first), the two are one: the entered contact's tags, attributes, name and opt-out history are merged
into it and the entered one is removed, so there is never a second contact for one person.

The caller holds both contacts' locks (``contacts.optout.lock``; the projector takes them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contacts import optout
from contacts.phones import e164_of_wa_id
from contacts.store import MAX_ATTRIBUTES, MAX_TAGS, merge_tags
from db.tables import contact_opt_changes, contacts
from schemas.identity import is_bsuid


def adopts(sent_to: str, wa_id: str | None) -> bool:
    """Whether Meta's ``wa_id`` for a send to ``sent_to`` is another id for a number (never a BSUID)."""
    return bool(wa_id) and wa_id != sent_to and not is_bsuid(sent_to) and not is_bsuid(wa_id)


def _merged_attributes(kept: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``kept``'s attributes, then ``other``'s it lacks while there is room."""
    merged = dict(kept)
    for key, value in other.items():
        if len(merged) >= MAX_ATTRIBUTES:
            break
        merged.setdefault(key, value)
    return merged


async def adopt_wa_id(conn: AsyncConnection, tenant_id: str, sent_to: str, wa_id: str | None) -> bool:
    """Store the tenant's contact ``sent_to`` under Meta's ``wa_id``; False when there was nothing to change."""
    if wa_id is None or not adopts(sent_to, wa_id):
        return False
    c = contacts.c
    rows = {r.wa_id: r for r in (await conn.execute(select(contacts).where(
        c.tenant_id == tenant_id, c.wa_id.in_([sent_to, wa_id])).order_by(c.wa_id).with_for_update())).all()}
    entered, known = rows.get(sent_to), rows.get(wa_id)
    if entered is None:
        return False  # no contact under the number sent to: the customer's messages create Meta's id's own
    e164 = entered.e164 or e164_of_wa_id(sent_to)
    if known is None:
        await conn.execute(update(contacts).where(c.tenant_id == tenant_id, c.id == entered.id)
                           .values(wa_id=wa_id, e164=e164, updated_at=func.now()))
    else:
        await conn.execute(contacts.delete().where(c.tenant_id == tenant_id, c.id == entered.id))
        await conn.execute(update(contacts).where(c.tenant_id == tenant_id, c.id == known.id).values(
            tags=merge_tags(known.tags, entered.tags)[:MAX_TAGS],
            attributes=_merged_attributes(known.attributes, entered.attributes),
            e164=known.e164 or e164, profile_name=known.profile_name or entered.profile_name,
            last_import_id=known.last_import_id or entered.last_import_id,
            phone=known.phone or entered.phone, user_id=known.user_id or entered.user_id,
            username=known.username or entered.username, updated_at=func.now()))
    # The opt-out history follows the person; the state is derived again from all of it.
    moved = await conn.execute(update(contact_opt_changes).where(
        contact_opt_changes.c.tenant_id == tenant_id, contact_opt_changes.c.wa_id == sent_to).values(wa_id=wa_id))
    if moved.rowcount:
        await optout.derive(conn, tenant_id, wa_id)
    return True
