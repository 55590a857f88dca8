"""Turning mapped events into durable deliveries: the events' bodies and one pending delivery per subscribed
endpoint, written in one transaction (the intake commits its offsets only after it)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import webhook_deliveries, webhook_endpoints, webhook_events, webhook_subjects
from webhooks.catalogue import TenantEvent, subscribed

LIVE = "live"
CHUNK = 1000  # rows per INSERT (asyncpg takes at most 32,767 parameters in one statement)


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
    firsts = [i.event for i in items if i.event.guard and i.event.guard[0] == "first"]
    if firsts:
        values = [{"tenant_id": e.tenant_id, "subject": e.guard[1], "first_source": e.guard[2]}
                  for e in firsts if e.guard]
        await conn.execute(insert(webhook_subjects).values(values).on_conflict_do_nothing())
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
    t = webhook_subjects.c
    rows = await conn.execute(select(webhook_subjects).where(
        t.subject.in_([p[1] for p in pairs]), t.tenant_id.in_(sorted({p[0] for p in pairs}))))
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
    events: dict[str, dict[str, Any]] = {}
    deliveries: list[dict[str, Any]] = []
    for item in items:
        event = item.event
        for endpoint_id, filters in targets.get(event.tenant_id, []):
            if not subscribed(filters, event.type):
                continue
            events.setdefault(event.id, {
                "event_id": event.id, "tenant_id": event.tenant_id, "type": event.type,
                "ordering_key": event.ordering_key, "recorded_at": item.recorded_at,
                "body": item.event.body(item.recorded_at).decode()})
            deliveries.append({"id": str(uuid.uuid4()), "tenant_id": event.tenant_id, "endpoint_id": endpoint_id,
                               "event_id": event.id, "event_type": event.type, "ordering_key": event.ordering_key,
                               "origin": origin})
    if not deliveries:
        return 0
    bodies = list(events.values())
    for start in range(0, len(bodies), CHUNK):
        await conn.execute(insert(webhook_events).values(bodies[start:start + CHUNK]).on_conflict_do_nothing())
    added = 0
    for start in range(0, len(deliveries), CHUNK):  # in order: a delivery's seq is its place in its conversation
        result = await conn.execute(insert(webhook_deliveries).values(deliveries[start:start + CHUNK])
                                    .on_conflict_do_nothing().returning(webhook_deliveries.c.id))
        added += len(result.all())
    return added


async def endpoint_target(conn: AsyncConnection, tenant_id: str,
                          endpoint_id: str) -> dict[str, list[tuple[str, list[str]]]]:
    """The one endpoint of a redelivery, whatever its state (a paused one is delivered to once switched on)."""
    row = (await conn.execute(select(webhook_endpoints.c.events).where(and_(
        webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id)))).first()
    return {tenant_id: [(endpoint_id, list(row.events))]} if row is not None else {}

