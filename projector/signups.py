"""Embedded Signup attempts → ``signups`` (the console follows the latest one).

A request opens a ``pending`` row (its code is not stored) and owns who asked and when; a result
owns the outcome. Either may come first and each is idempotent. Of several results for one
attempt the one with the higher rank wins (``connected`` over ``failed``: a redelivered request
whose code was already used must not undo a connection), then the later one, whatever the order
they are projected in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, func, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import signups
from schemas.signup import SignupRequest, SignupResult


async def write_request(conn: AsyncConnection, event: SignupRequest) -> None:
    owned = {"requested_by": event.requested_by, "requested_at": event.requested_at}
    stmt = insert(signups).values(attempt_id=event.attempt_id, tenant_id=event.tenant_id, status="pending", **owned)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[signups.c.attempt_id], set_={k: stmt.excluded[k] for k in owned},
        where=signups.c.tenant_id == stmt.excluded.tenant_id))


def _rank(status: ColumnElement[Any]) -> ColumnElement[int]:
    return case({"connected": 2, "failed": 1}, value=status, else_=0)


async def write_result(conn: AsyncConnection, event: SignupResult) -> None:
    owned = dict(
        status=event.outcome, step=event.step, error_code=event.error_code, error_message=event.error_message,
        reconnected=event.reconnected, result=event.model_dump(mode="json", include={"wabas", "numbers"}),
        finished_at=event.finished_at,
    )
    new = insert(signups).values(attempt_id=event.attempt_id, tenant_id=event.tenant_id, **owned)
    stored = tuple_(_rank(signups.c.status), signups.c.finished_at)  # pending (no finished_at) ranks lowest
    await conn.execute(new.on_conflict_do_update(
        index_elements=[signups.c.attempt_id],
        set_={**{k: new.excluded[k] for k in owned}, "updated_at": func.now()},
        where=(signups.c.tenant_id == new.excluded.tenant_id)
        & (stored < tuple_(_rank(new.excluded.status), new.excluded.finished_at)),
    ))
