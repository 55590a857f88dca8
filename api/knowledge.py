"""A tenant's knowledge base: ``/v1/knowledge``. Everyone of the tenant reads it; admins edit it.

The AI (the offline scorer or a model) answers from these entries. Every committed change bumps
the tenant's configuration version, so the AI worker reloads the entries before its next answer.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from sqlalchemy import Text, cast, func, or_, select, update

from api.auth import AdminDep, TenantDep
from api.deps import EngineDep, RedisDep
from api.knowledge_models import KnowledgeEntryCreate, KnowledgeEntryPublic
from api.pages import Page, PageDep, keyset, page_of
from db.tables import knowledge_entries
from tenants.config import bump_config_version

router = APIRouter(prefix="/v1", tags=["knowledge"])

MAX_ENTRIES = 2000  # the scorer indexes the whole base; a model's prompt takes the best few
MAX_SEARCH = 200  # characters of a search
EntryId = Annotated[uuid.UUID, Path()]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such entry"}}


def _public(row: Any) -> KnowledgeEntryPublic:
    return KnowledgeEntryPublic(id=str(row.id), question=row.question, answer=row.answer, keywords=row.keywords,
                                created_at=row.created_at, updated_at=row.updated_at)


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "knowledge entry not found")


def _matching(q: str) -> Any:
    """Entries whose question, answer or a keyword contains ``q`` (case-insensitive, taken literally)."""
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(knowledge_entries.c.question.ilike(pattern, escape="\\"),
               knowledge_entries.c.answer.ilike(pattern, escape="\\"),
               cast(knowledge_entries.c.keywords, Text).ilike(pattern, escape="\\"))


@router.get("/knowledge")
async def list_entries(principal: TenantDep, engine: EngineDep, page: PageDep,
                       q: Annotated[str | None, Query(min_length=1, max_length=MAX_SEARCH,
                                                      description="text the question, answer or a keyword "
                                                                  "contains")] = None) -> Page[KnowledgeEntryPublic]:
    """The entries of the tenant's knowledge base, oldest first (those matching ``q`` when given)."""
    query = select(knowledge_entries).where(knowledge_entries.c.tenant_id == principal.tenant_id)
    if q is not None and q.strip():
        query = query.where(_matching(q.strip()))
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, knowledge_entries.c.created_at, knowledge_entries.c.id, page)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
    return Page(items=[_public(r) for r in shown], next_cursor=cursor)


@router.post("/knowledge", status_code=status.HTTP_201_CREATED)
async def create_entry(body: KnowledgeEntryCreate, principal: AdminDep, engine: EngineDep,
                       redis: RedisDep) -> KnowledgeEntryPublic:
    """Add a question and its answer."""
    tenant = principal.tenant_id
    async with engine.begin() as conn:
        count = (await conn.execute(select(func.count()).where(knowledge_entries.c.tenant_id == tenant))).scalar()
        if (count or 0) >= MAX_ENTRIES:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"a knowledge base holds at most {MAX_ENTRIES} entries")
        row = (await conn.execute(knowledge_entries.insert().values(
            id=str(uuid.uuid4()), tenant_id=tenant, **body.model_dump()).returning(*knowledge_entries.c))).one()
    await bump_config_version(redis, tenant)
    return _public(row)


@router.get("/knowledge/{entry_id}", responses=NOT_FOUND)
async def get_entry(entry_id: EntryId, principal: TenantDep, engine: EngineDep) -> KnowledgeEntryPublic:
    """One entry."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(knowledge_entries).where(
            knowledge_entries.c.tenant_id == principal.tenant_id, knowledge_entries.c.id == str(entry_id)))).first()
    if row is None:
        raise _not_found()
    return _public(row)


@router.put("/knowledge/{entry_id}", responses=NOT_FOUND)
async def replace_entry(entry_id: EntryId, body: KnowledgeEntryCreate, principal: AdminDep, engine: EngineDep,
                        redis: RedisDep) -> KnowledgeEntryPublic:
    """Replace an entry's question, answer and keywords."""
    async with engine.begin() as conn:
        row = (await conn.execute(update(knowledge_entries).where(
            knowledge_entries.c.tenant_id == principal.tenant_id, knowledge_entries.c.id == str(entry_id))
            .values(**body.model_dump(), updated_at=func.now()).returning(*knowledge_entries.c))).first()
    if row is None:
        raise _not_found()
    await bump_config_version(redis, principal.tenant_id)
    return _public(row)


@router.delete("/knowledge/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_entry(entry_id: EntryId, principal: AdminDep, engine: EngineDep, redis: RedisDep) -> Response:
    """Remove an entry."""
    async with engine.begin() as conn:
        deleted = (await conn.execute(knowledge_entries.delete().where(
            knowledge_entries.c.tenant_id == principal.tenant_id, knowledge_entries.c.id == str(entry_id))
            .returning(knowledge_entries.c.id))).first()
    if deleted is None:
        raise _not_found()
    await bump_config_version(redis, principal.tenant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
