"""A contact's campaign opt-out: every change recorded with its source, the contact's state derived from them.

Opt-outs and opt-ins come from the customer's STOP/START (``keyword``), an automation rule (``rule``), Meta's
``user_preferences`` webhook (``meta``: marketing messages stopped or resumed in WhatsApp), a tenant admin
(``admin``, with who), and before migration 0013 the conversation's snapshot (``conversation``). Each is a row
of ``contact_opt_changes`` (unique by event id, so a redelivery is a no-op); the contact's ``opted_out``,
``opted_out_at`` (when the current opt-out began), ``opt_source`` and ``opt_actor`` are those of the latest
change by (time, event id), derived again after each write, so the order the changes arrive in does not
matter. Callers hold the contact's lock (``lock``) for the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import contact_opt_changes, contacts

SOURCES = ("keyword", "rule", "meta", "admin", "conversation")

# Transaction-level advisory locks in the order of their keys, so two writers never deadlock (the projector's).
_LOCK = text("SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h "
             "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered")


def lock_key(tenant_id: str, wa_id: str) -> str:
    """The advisory-lock key of one contact (the projector takes the same)."""
    return f"{tenant_id}\x1fcontact:{wa_id}"


async def lock(conn: AsyncConnection, tenant_id: str, wa_ids: Iterable[str]) -> None:
    """Hold these contacts' locks until the transaction ends."""
    keys = sorted({lock_key(tenant_id, w) for w in wa_ids})
    if keys:
        await conn.execute(_LOCK, {"keys": keys})


async def record(conn: AsyncConnection, *, event_id: str, tenant_id: str, wa_id: str, opted_out: bool,
                 at: datetime, source: str, actor: str | None = None, detail: str | None = None) -> bool:
    """Record one opt-out (or opt-in) and derive the contact's state; False when ``event_id`` was seen before."""
    if source not in SOURCES:
        raise ValueError(f"unknown opt-out source {source!r}")
    added = await conn.execute(insert(contact_opt_changes).values(
        event_id=event_id, tenant_id=tenant_id, wa_id=wa_id, opted_out=opted_out, at=at, source=source,
        actor=actor, detail=detail).on_conflict_do_nothing(index_elements=["event_id"])
        .returning(contact_opt_changes.c.event_id))
    if added.first() is None:
        return False
    await derive(conn, tenant_id, wa_id)
    return True


async def derive(conn: AsyncConnection, tenant_id: str, wa_id: str) -> None:
    """Set the contact's opt-out columns from its recorded changes (creating the contact if it is new)."""
    ch = contact_opt_changes.c
    changes = select(ch.opted_out, ch.at, ch.event_id, ch.source, ch.actor).where(
        ch.tenant_id == tenant_id, ch.wa_id == wa_id)
    newest = (ch.at.desc(), ch.event_id.desc())
    latest = (await conn.execute(changes.order_by(*newest).limit(1))).first()
    if latest is None:
        return
    since = None
    if latest.opted_out:
        opted_in = (await conn.execute(changes.where(~ch.opted_out).order_by(*newest).limit(1))).first()
        run = changes.where(ch.opted_out)
        if opted_in is not None:
            run = run.where(tuple_(ch.at, ch.event_id) > tuple_(opted_in.at, opted_in.event_id))
        since = await conn.scalar(select(func.min(run.subquery().c.at)))
    values: dict[str, Any] = {"opted_out": latest.opted_out, "opted_out_at": since, "opt_source": latest.source,
                              "opt_actor": latest.actor}
    stmt = insert(contacts).values(tenant_id=tenant_id, wa_id=wa_id, **values)
    await conn.execute(stmt.on_conflict_do_update(
        constraint="uq_contacts_tenant_wa_id",
        set_={**{k: stmt.excluded[k] for k in values}, "updated_at": func.now()}))


def marketing_preferences(value: dict[str, Any]) -> list[tuple[str, bool, datetime | None, str | None]]:
    """The marketing opt-outs (True) and opt-ins (False) in a ``user_preferences`` webhook value:
    ``(wa_id, opted_out, timestamp, detail)`` for each ``marketing_messages`` preference ``stop`` or ``resume``
    (other values, such as ``signup``, change nothing)."""
    found: list[tuple[str, bool, datetime | None, str | None]] = []
    preferences = value.get("user_preferences")
    for pref in preferences if isinstance(preferences, list) else []:
        if not isinstance(pref, dict) or pref.get("category") != "marketing_messages":
            continue
        choice, wa_id = pref.get("value"), pref.get("wa_id")
        if choice not in ("stop", "resume") or not isinstance(wa_id, str) or not wa_id:
            continue
        at = _timestamp(pref.get("timestamp"))
        detail = pref.get("detail")
        found.append((wa_id, choice == "stop", at, str(detail)[:500] if detail is not None else None))
    return found


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
