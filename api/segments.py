"""Saved audiences: ``/v1/segments`` (admins edit, everyone of the tenant reads), and live counts.

A segment is a named filter on contacts' tags and attributes (``contacts.segments``); opted-out contacts are
left out unless the filter includes them. ``GET /v1/segments/{id}/count`` counts a saved segment now, and
``POST /v1/segments/count`` counts a filter before it is saved (the count shown before a campaign's launch).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from sqlalchemy import func, select

from api.auth import AdminDep, TenantDep
from api.contact_models import SegmentCount, SegmentCreate, SegmentPublic
from api.deps import EngineDep
from api.pages import Page, PageDep, keyset, page_of
from api.unique import check_cap, unique_write
from contacts import segments as audience
from contacts.segments import SegmentFilter
from db.tables import segments

router = APIRouter(tags=["segments"])  # mounted under /v1 by api.contacts

MAX_SEGMENTS = 500
SegmentId = Annotated[uuid.UUID, Path()]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such segment"}}
TAKEN: dict[int | str, dict[str, Any]] = {409: {"description": "the tenant has a segment of this name"}}
TAKEN_WORDS = "a segment of this name exists"


def _public(row: Any) -> SegmentPublic:
    return SegmentPublic(id=str(row.id), name=row.name, filter=SegmentFilter.model_validate(row.filter),
                         created_at=row.created_at, updated_at=row.updated_at)


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "segment not found")


@router.get("/segments")
async def list_segments(principal: TenantDep, engine: EngineDep, page: PageDep) -> Page[SegmentPublic]:
    """The tenant's segments, oldest first."""
    query = select(segments).where(segments.c.tenant_id == principal.tenant_id)
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, segments.c.created_at, segments.c.id, page)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
    return Page(items=[_public(r) for r in shown], next_cursor=cursor)


@router.post("/segments", status_code=status.HTTP_201_CREATED, responses=TAKEN)
async def create_segment(body: SegmentCreate, principal: AdminDep, engine: EngineDep) -> SegmentPublic:
    """Save a segment."""
    tenant = principal.tenant_id
    async with unique_write(engine, TAKEN_WORDS) as conn:
        await check_cap(conn, segments, tenant, MAX_SEGMENTS, f"a tenant has at most {MAX_SEGMENTS} segments")
        row = (await conn.execute(segments.insert().values(
            id=str(uuid.uuid4()), tenant_id=tenant, name=body.name, filter=body.filter.model_dump(mode="json"))
            .returning(*segments.c))).one()
    return _public(row)


@router.post("/segments/count")
async def count_filter(body: SegmentFilter, principal: TenantDep, engine: EngineDep) -> SegmentCount:
    """How many contacts a filter holds now (before it is saved)."""
    async with engine.connect() as conn:
        return SegmentCount(count=await audience.count(conn, principal.tenant_id, body))


@router.get("/segments/{segment_id}", responses=NOT_FOUND)
async def get_segment(segment_id: SegmentId, principal: TenantDep, engine: EngineDep) -> SegmentPublic:
    """One segment."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(segments).where(
            segments.c.tenant_id == principal.tenant_id, segments.c.id == str(segment_id)))).first()
    if row is None:
        raise _not_found()
    return _public(row)


@router.get("/segments/{segment_id}/count", responses=NOT_FOUND)
async def count_segment(segment_id: SegmentId, principal: TenantDep, engine: EngineDep) -> SegmentCount:
    """How many contacts the segment holds now."""
    async with engine.connect() as conn:
        found = await audience.load(conn, principal.tenant_id, str(segment_id))
        if found is None:
            raise _not_found()
        return SegmentCount(count=await audience.count(conn, principal.tenant_id, found))


@router.put("/segments/{segment_id}", responses={**NOT_FOUND, **TAKEN})
async def replace_segment(segment_id: SegmentId, body: SegmentCreate, principal: AdminDep,
                          engine: EngineDep) -> SegmentPublic:
    """Rename a segment or change its filter."""
    async with unique_write(engine, TAKEN_WORDS) as conn:
        row = (await conn.execute(segments.update().where(
            segments.c.tenant_id == principal.tenant_id, segments.c.id == str(segment_id))
            .values(name=body.name, filter=body.filter.model_dump(mode="json"), updated_at=func.now())
            .returning(*segments.c))).first()
    if row is None:
        raise _not_found()
    return _public(row)


@router.delete("/segments/{segment_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_segment(segment_id: SegmentId, principal: AdminDep, engine: EngineDep) -> Response:
    """Remove a segment."""
    async with engine.begin() as conn:
        deleted = (await conn.execute(segments.delete().where(
            segments.c.tenant_id == principal.tenant_id, segments.c.id == str(segment_id))
            .returning(segments.c.id))).first()
    if deleted is None:
        raise _not_found()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
