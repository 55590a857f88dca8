"""Embedded Signup attempts → ``signups`` (the console follows the latest one).

A request opens a ``pending`` row (its code is not stored); a result closes it. Both are
idempotent, and a result never replaces ``connected`` with a later ``failed`` for the same attempt
(a redelivered request whose code was already used must not undo a connection).
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import signups
from schemas.signup import SignupRequest, SignupResult


async def write_request(conn: AsyncConnection, event: SignupRequest) -> None:
    await conn.execute(insert(signups).values(
        attempt_id=event.attempt_id, tenant_id=event.tenant_id, status="pending", requested_by=event.requested_by,
        requested_at=event.requested_at,
    ).on_conflict_do_nothing(index_elements=[signups.c.attempt_id]))


async def write_result(conn: AsyncConnection, event: SignupResult) -> None:
    values = dict(
        attempt_id=event.attempt_id, tenant_id=event.tenant_id, status=event.outcome, step=event.step,
        error_code=event.error_code, error_message=event.error_message, reconnected=event.reconnected,
        result=event.model_dump(mode="json", include={"wabas", "numbers"}), finished_at=event.finished_at,
    )
    new = insert(signups).values(**values)
    await conn.execute(new.on_conflict_do_update(
        index_elements=[signups.c.attempt_id],
        set_={**{k: new.excluded[k] for k in values if k not in ("attempt_id", "tenant_id")},
              "updated_at": func.now()},
        where=(signups.c.tenant_id == new.excluded.tenant_id) & (signups.c.status != "connected"),
    ))
