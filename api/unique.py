"""Writes that a tenant's unique names can refuse: a transaction whose unique violation is the API's 409,
and the per-tenant cap checked before an insert (422 past it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import HTTPException, status
from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def unique_write(engine: AsyncEngine, taken: str) -> AsyncIterator[AsyncConnection]:
    """One transaction; a unique violation in it (at a statement or at commit) is a 409 saying ``taken``."""
    try:
        async with engine.begin() as conn:
            yield conn
    except IntegrityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, taken) from exc


async def check_cap(conn: AsyncConnection, table: Table, tenant_id: str, cap: int, words: str) -> None:
    """422 saying ``words`` when the tenant already holds ``cap`` rows of ``table``."""
    held = await conn.scalar(select(func.count()).where(table.c.tenant_id == tenant_id))
    if (held or 0) >= cap:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, words)
