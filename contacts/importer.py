"""Running a contacts import: a spooled CSV read in batches, merged into the tenant's contacts, progress stored.

``run`` reads ``BATCH`` rows at a time (parsing in a worker thread, so the web server's loop stays free),
merges the batch's duplicate rows, and writes it in one transaction (``write_batch``: the contacts' locks,
their current rows, one multi-row upsert), then stores the progress on the ``contact_imports`` row (rows read,
bytes read, created, updated, invalid, duplicates, the first ``MAX_ERRORS`` invalid rows with their line and
reason). A number met again in a later batch is recognised by the contact's ``last_import_id`` and counted
as a duplicate, so no set of every number is held in memory. A contact deleted after opting out and imported
again is opted out again (its opt-out history is kept). Importing the same file twice updates, never doubles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contacts import optout
from contacts.csv_import import Columns, Invalid, Parsed, Rows, parse
from contacts.phones import wa_id_of
from db.tables import contact_imports, contact_opt_changes, contacts

log = logging.getLogger(__name__)

BATCH = 1000
ATTEMPTS = 3
RETRIED = ("40P01", "40001")  # deadlock detected, serialization failure
MAX_ERRORS = 100  # invalid rows kept with their reason; all are counted
STALE_AFTER = timedelta(seconds=120)  # a running import not heard of for this long was interrupted
INTERRUPTED = ("interrupted: the server running it stopped; import the file again "
               "(rows already imported are merged, not doubled)")


def status_of(row: Any, now: datetime | None = None) -> tuple[str, str | None]:
    """The import's status and error as the API shows them (a silent running import is reported failed)."""
    if row.status == "running" and row.updated_at < (now or datetime.now(UTC)) - STALE_AFTER:
        return "failed", INTERRUPTED
    return row.status, row.error


def _batches(rows: Rows, columns: Columns) -> Iterator[tuple[dict[str, Parsed], list[Invalid], int]]:
    """Batches of at most ``BATCH`` rows: contacts by number (duplicates merged), invalid rows, rows read."""
    batch: dict[str, Parsed] = {}
    invalid: list[Invalid] = []
    read = 0
    for item in rows:
        read += 1
        parsed = item if isinstance(item, Invalid) else parse(columns, *item)
        if isinstance(parsed, Invalid):
            invalid.append(parsed)
        elif parsed.e164 in batch:
            batch[parsed.e164].merge(parsed)
        else:
            batch[parsed.e164] = parsed
        if read >= BATCH:
            yield batch, invalid, read
            batch, invalid, read = {}, [], 0
    if read:
        yield batch, invalid, read


async def run(engine: AsyncEngine, import_id: str, tenant_id: str, rows: Rows, columns: Columns) -> None:
    """Import every row of ``rows``; the outcome (completed or failed with the reason) is stored on the import."""
    kept = 0
    try:
        batches = _batches(rows, columns)
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            contacts_by_number, invalid, read = batch
            keep = invalid[:max(MAX_ERRORS - kept, 0)]
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    async with engine.begin() as conn:
                        created, updated, duplicates = await write_batch(conn, tenant_id, import_id,
                                                                         contacts_by_number)
                        await _progress(conn, import_id, read=read, created=created, updated=updated,
                                        duplicates=duplicates + sum(p.merged for p in contacts_by_number.values()),
                                        invalid=invalid, kept=keep, bytes_read=rows.bytes_read)
                    break
                except DBAPIError as exc:  # a deadlock with another writer of these contacts: the batch again
                    if attempt == ATTEMPTS or _sqlstate(exc) not in RETRIED:
                        raise
            kept += len(keep)
        await _finish(engine, import_id, "completed", None)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("contact import %s failed", import_id)
        await _finish(engine, import_id, "failed", f"{type(exc).__name__}: {str(exc)[:300]}")


def _sqlstate(exc: DBAPIError) -> str | None:
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if (state := getattr(error, "sqlstate", None)) is not None:
            return str(state)
    return None


async def write_batch(conn: AsyncConnection, tenant_id: str, import_id: str,
                      batch: dict[str, Parsed]) -> tuple[int, int, int]:
    """Merge one batch into the contacts; (created, updated, duplicates of rows of earlier batches)."""
    if not batch:
        return 0, 0, 0
    c = contacts.c
    # A contact whose WhatsApp id Meta gave differs from its number's digits is found by its number.
    adopted = dict((await conn.execute(select(c.e164, c.wa_id).where(
        c.tenant_id == tenant_id, c.e164.in_(list(batch))))).tuples().all())
    wa_ids = {e164: adopted.get(e164) or wa_id_of(e164) for e164 in batch}
    await optout.lock(conn, tenant_id, wa_ids.values())
    current = {r.wa_id: r for r in (await conn.execute(
        select(c.wa_id, c.tags, c.attributes, c.profile_name, c.last_import_id).where(
            c.tenant_id == tenant_id, c.wa_id.in_(list(wa_ids.values()))).order_by(c.wa_id)
        .with_for_update())).all()}
    created = updated = duplicates = 0
    values: list[dict[str, Any]] = []
    for e164, parsed in batch.items():
        wa_id = wa_ids[e164]
        row = current.get(wa_id)
        if row is None:
            created += 1
            tags, attributes, name = parsed.tags, parsed.attributes, parsed.name
        else:
            if str(row.last_import_id) == import_id:
                duplicates += 1
            else:
                updated += 1
            tags = [*row.tags, *(t for t in parsed.tags if t not in row.tags)]
            attributes = {**row.attributes, **parsed.attributes}
            name = parsed.name or row.profile_name
        values.append({"tenant_id": tenant_id, "wa_id": wa_id, "e164": e164, "profile_name": name, "tags": tags,
                       "attributes": attributes, "last_import_id": import_id})
    stmt = insert(contacts).values(values)
    await conn.execute(stmt.on_conflict_do_update(
        constraint="uq_contacts_tenant_wa_id",
        set_={"e164": stmt.excluded.e164, "profile_name": stmt.excluded.profile_name, "tags": stmt.excluded.tags,
              "attributes": stmt.excluded.attributes, "last_import_id": stmt.excluded.last_import_id,
              "updated_at": func.now()}))
    new = [wa_ids[e] for e in batch if wa_ids[e] not in current]
    if new:  # deleted contacts imported again keep their opt-out
        known = (await conn.execute(select(contact_opt_changes.c.wa_id).distinct().where(
            contact_opt_changes.c.tenant_id == tenant_id, contact_opt_changes.c.wa_id.in_(new)))).scalars().all()
        for wa_id in known:
            await optout.derive(conn, tenant_id, wa_id)
    return created, updated, duplicates


async def _progress(conn: AsyncConnection, import_id: str, *, read: int, created: int, updated: int,
                    duplicates: int, invalid: list[Invalid], kept: list[Invalid], bytes_read: int) -> None:
    """Add one batch's counts to the import (and ``kept``, the invalid rows still within ``MAX_ERRORS``)."""
    imp = contact_imports.c
    errors = [{"line": i.line, "reason": i.reason, **({"value": i.value} if i.value else {})} for i in kept]
    values: dict[str, Any] = {
        "rows": imp.rows + read, "created": imp.created + created, "updated": imp.updated + updated,
        "duplicates": imp.duplicates + duplicates, "invalid": imp.invalid + len(invalid), "bytes_read": bytes_read,
        "updated_at": func.now()}
    if errors:
        values["errors"] = imp.errors.op("||")(bindparam("new_errors", errors, type_=JSONB))
    await conn.execute(update(contact_imports).where(imp.id == import_id).values(**values))


async def _finish(engine: AsyncEngine, import_id: str, status: str, error: str | None) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(contact_imports).where(contact_imports.c.id == import_id).values(
            status=status, error=error, finished_at=func.now(), updated_at=func.now()))
