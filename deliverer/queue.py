"""Turning mapped events into durable deliveries: the events' bodies and one pending delivery per subscribed
endpoint, written in one transaction (the intake commits its offsets only after it)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.bulk import columns, rows_insert
from db.tables import webhook_endpoints, webhook_subjects
from webhooks.catalogue import TenantEvent, subscribed

LIVE = "live"

# Built once: a batch's rows are bound as one array per column (db.bulk), so no statement is compiled per batch.
_SUBJECT_COLUMNS = (("tenant_id", "uuid"), ("subject", "text"), ("first_source", "text"))
INSERT_SUBJECTS = rows_insert("webhook_subjects", _SUBJECT_COLUMNS, "ON CONFLICT DO NOTHING")
_S = webhook_subjects.c
# LATERAL (kept by OFFSET 0 from being flattened into a join): one primary-key lookup per pair; a join's plan
# for a batch of hundreds hashes the whole table.
READ_SUBJECTS = text(
    "SELECT s.tenant_id, s.subject, s.first_source, s.opted_out, s.opted_out_source "
    "FROM unnest(CAST(:tenants AS uuid[]), CAST(:subjects AS text[])) AS k(tenant_id, subject) CROSS JOIN LATERAL ("
    "SELECT * FROM webhook_subjects AS w WHERE w.tenant_id = k.tenant_id AND w.subject = k.subject OFFSET 0) AS s",
).columns(_S.tenant_id, _S.subject, _S.first_source, _S.opted_out, _S.opted_out_source)
_EVENT_COLUMNS = (("event_id", "text"), ("tenant_id", "uuid"), ("type", "text"), ("ordering_key", "text"),
                  ("recorded_at", "timestamptz"), ("body", "text"))
INSERT_EVENTS = rows_insert("webhook_events", _EVENT_COLUMNS, "ON CONFLICT DO NOTHING")
_DELIVERY_COLUMNS = (("id", "uuid"), ("tenant_id", "uuid"), ("endpoint_id", "uuid"), ("event_id", "text"),
                     ("event_type", "text"), ("ordering_key", "text"), ("origin", "text"))
# In the batch's order: a delivery's seq is its place in its conversation.
INSERT_DELIVERIES = rows_insert("webhook_deliveries", _DELIVERY_COLUMNS, "ON CONFLICT DO NOTHING RETURNING id")


@dataclass(frozen=True)
class Recorded:
    """A mapped event with the time its record was written to Kafka."""

    event: TenantEvent
    recorded_at: datetime


async def live_endpoints(conn: AsyncConnection, tenant_ids: set[str]) -> dict[str, list[tuple[str, list[str]]]]:
    """Per tenant, its active endpoints' ids and filters."""
    rows = await conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.tenant_id, webhook_endpoints.c.events)
                              .where(webhook_endpoints.c.tenant_id.in_(sorted(tenant_ids)),
                                     webhook_endpoints.c.enabled, webhook_endpoints.c.disabled_at.is_(None)))
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for endpoint_id, tenant_id, events in rows:
        found.setdefault(tenant_id, []).append((endpoint_id, list(events)))
    return found


async def pass_guards(conn: AsyncConnection, items: Sequence[Recorded]) -> list[Recorded]:
    """The events whose guard lets them through, in order; the subjects' state is updated as they pass."""
    firsts = [(e.tenant_id, e.guard[1], e.guard[2]) for e in (i.event for i in items)
              if e.guard and e.guard[0] == "first"]
    if firsts:
        await conn.execute(INSERT_SUBJECTS, columns([name for name, _ in _SUBJECT_COLUMNS], firsts))
    known = await _subjects(conn, [i.event for i in items if i.event.guard])
    passed = []
    for item in items:
        guard = item.event.guard
        if guard is None:
            passed.append(item)
            continue
        kind, subject, record = guard
        key = (item.event.tenant_id, subject)
        row = known.get(key)
        if kind == "first":
            if row is not None and row["first_source"] == record:
                passed.append(item)
        elif kind == "opted_out":
            if row is None or not row["opted_out"]:
                known[key] = await _opt(conn, item.event.tenant_id, subject, record, opted_out=True)
                passed.append(item)
            elif row["opted_out_source"] == record:
                passed.append(item)
        elif kind == "opted_in" and row is not None and row["opted_out"]:
            known[key] = await _opt(conn, item.event.tenant_id, subject, None, opted_out=False)
    return passed


async def replayed_guards(conn: AsyncConnection, items: Sequence[Recorded]) -> list[Recorded]:
    """For a replay: the guarded events whose record is the one the subject's state names (nothing is changed)."""
    known = await _subjects(conn, [i.event for i in items if i.event.guard])
    passed = []
    for item in items:
        guard = item.event.guard
        if guard is None:
            passed.append(item)
            continue
        row = known.get((item.event.tenant_id, guard[1]))
        if row is not None and ((guard[0] == "first" and row["first_source"] == guard[2]) or (
                guard[0] == "opted_out" and row["opted_out_source"] == guard[2])):
            passed.append(item)
    return passed


async def _subjects(conn: AsyncConnection, events: list[TenantEvent]) -> dict[tuple[str, str], dict[str, Any]]:
    pairs = sorted({(e.tenant_id, e.guard[1]) for e in events if e.guard})
    if not pairs:
        return {}
    rows = await conn.execute(READ_SUBJECTS, {"tenants": [p[0] for p in pairs], "subjects": [p[1] for p in pairs]})
    return {(r.tenant_id, r.subject): dict(r._mapping) for r in rows}


async def _opt(conn: AsyncConnection, tenant_id: str, subject: str, record: str | None, *,
               opted_out: bool) -> dict[str, Any]:
    values = {"opted_out": opted_out, "opted_out_source": record} if opted_out else {"opted_out": False}
    stmt = insert(webhook_subjects).values(tenant_id=tenant_id, subject=subject, first_source=record or "opt-in",
                                           **values)
    row = (await conn.execute(stmt.on_conflict_do_update(
        index_elements=[webhook_subjects.c.tenant_id, webhook_subjects.c.subject], set_=values,
    ).returning(webhook_subjects))).one()
    return dict(row._mapping)


async def enqueue(conn: AsyncConnection, items: Sequence[Recorded], targets: dict[str, list[tuple[str, list[str]]]],
                  *, origin: str = LIVE) -> int:
    """Store the events some endpoint subscribed to and one pending delivery per (endpoint, event), in ``items``'
    order; a delivery already recorded (a re-run batch) is kept as it is. The number of deliveries added."""
    events: dict[str, tuple[Any, ...]] = {}
    deliveries: list[tuple[str, ...]] = []
    for item in items:
        event = item.event
        for endpoint_id, filters in targets.get(event.tenant_id, []):
            if not subscribed(filters, event.type):
                continue
            if event.id not in events:
                events[event.id] = (event.id, event.tenant_id, event.type, event.ordering_key, item.recorded_at,
                                    event.body(item.recorded_at).decode())
            deliveries.append((str(uuid.uuid4()), event.tenant_id, endpoint_id, event.id, event.type,
                               event.ordering_key, origin))
    if not deliveries:
        return 0
    await conn.execute(INSERT_EVENTS, columns([name for name, _ in _EVENT_COLUMNS], list(events.values())))
    result = await conn.execute(INSERT_DELIVERIES, columns([name for name, _ in _DELIVERY_COLUMNS], deliveries))
    return len(result.all())


async def endpoint_target(conn: AsyncConnection, tenant_id: str,
                          endpoint_id: str) -> dict[str, list[tuple[str, list[str]]]]:
    """The one endpoint of a redelivery, whatever its state (a paused one is delivered to once switched on)."""
    row = (await conn.execute(select(webhook_endpoints.c.events).where(and_(
        webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id)))).first()
    return {tenant_id: [(endpoint_id, list(row.events))]} if row is not None else {}

