"""The agent inbox: ``GET /v1/conversations`` (views, filters, search), one conversation, its notes.

Conversations and contacts are written by the projector from the conversation processor's events,
so what is read here trails the processor by a moment. Listings are newest activity first, in the
pages of ``api.pages`` keyed on (last activity, key). Every query is scoped by the caller's tenant; another
tenant's conversation is a 404. Actions on a conversation are in ``api.inbox_actions``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.agent_models import Team
from api.auth import Principal, TenantDep
from api.deps import EngineDep
from api.inbox_models import ConversationPublic, ConversationSummary, NoteCreate, NotePublic, StateName
from api.pages import Page, PageDep, keyset, page_of
from db.tables import contacts, conversation_notes, conversations
from schemas.identity import is_bsuid
from schemas.outbound import SERVICE_WINDOW_S

router = APIRouter(prefix="/v1", tags=["inbox"])

ConversationKey = Annotated[str, Path(min_length=3, max_length=200, description='"{phone_number_id}:{wa_id}"')]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such conversation"}}
ACTIVITY = func.coalesce(conversations.c.last_message_at, conversations.c.created_at)
_FROM = conversations.outerjoin(contacts, and_(contacts.c.tenant_id == conversations.c.tenant_id,
                                               contacts.c.wa_id == conversations.c.wa_id))
_COLUMNS = (*conversations.c, contacts.c.profile_name, contacts.c.tags, contacts.c.attributes, contacts.c.opted_out,
            contacts.c.phone, contacts.c.user_id, contacts.c.username, ACTIVITY.label("activity"))


def _summary(row: Any) -> dict[str, Any]:
    window = row.last_inbound_at + timedelta(seconds=SERVICE_WINDOW_S) if row.last_inbound_at else None
    return {"key": row.key, "phone_number_id": row.phone_number_id, "wa_id": row.wa_id,
            "profile_name": row.profile_name, "tags": list(row.tags or []), "opted_out": bool(row.opted_out),
            "phone": row.phone or (None if is_bsuid(row.wa_id) else row.wa_id), "user_id": row.user_id,
            "username": row.username, "state": row.state, "assignee_id": row.assignee_id, "team": row.team,
            "handoff_reason": row.handoff_reason, "last_message_at": row.last_message_at,
            "last_inbound_at": row.last_inbound_at, "window_open_until": window,
            "state_changed_at": row.state_changed_at}


async def conversation_row(conn: AsyncConnection, tenant_id: str, key: str) -> Any:
    """The tenant's conversation ``key`` with its contact; 404 when the tenant has none."""
    row = (await conn.execute(select(*_COLUMNS).select_from(_FROM).where(
        conversations.c.tenant_id == tenant_id, conversations.c.key == key))).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "conversation not found")
    return row


def _search(q: str) -> Any:
    """The contact's name or username contains ``q`` (any case), or its number contains ``q``'s digits."""
    digits = "".join(c for c in q if c not in " +-().")
    by_number = or_(conversations.c.wa_id.contains(digits, autoescape=True),
                    contacts.c.phone.contains(digits, autoescape=True)) if digits.isdigit() else false()
    return or_(contacts.c.profile_name.icontains(q, autoescape=True),
               contacts.c.username.icontains(q.removeprefix("@"), autoescape=True), by_number)


@router.get("/conversations", responses={422: {"description": "a bad filter or cursor; view=mine for an API key"}})
async def list_conversations(
    principal: TenantDep, engine: EngineDep, page: PageDep,
    view: Annotated[Literal["mine", "queued", "all"], Query(description="mine: assigned to the caller")] = "all",
    state: StateName | None = None, team: Annotated[Team | None, Query()] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="name, username or number")] = None,
) -> Page[ConversationSummary]:
    """The tenant's conversations, latest activity first, in pages."""
    query = select(*_COLUMNS).select_from(_FROM).where(conversations.c.tenant_id == principal.tenant_id)
    for condition in _filters(principal, view, state, team, q):
        query = query.where(condition)
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, ACTIVITY, conversations.c.key, page, newest_first=True)))
    shown, cursor = page_of(rows, page, lambda r: (r.activity, r.key))
    return Page(items=[ConversationSummary(**_summary(r)) for r in shown], next_cursor=cursor)


def _filters(principal: Principal, view: str, state: str | None, team: str | None, q: str | None) -> list[Any]:
    conditions: list[Any] = []
    if view == "mine":
        if principal.user_id is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "view=mine needs a signed-in user")
        conditions.append(conversations.c.assignee_id == principal.user_id)
    elif view == "queued":
        conditions.append(conversations.c.state == "queued")
    if state is not None:
        conditions.append(conversations.c.state == state)
    if team is not None:
        conditions.append(conversations.c.team == team)
    if q is not None and q.strip():
        conditions.append(_search(q.strip()))
    return conditions


@router.get("/conversations/{key}", responses=NOT_FOUND)
async def get_conversation(key: ConversationKey, principal: TenantDep, engine: EngineDep) -> ConversationPublic:
    """One conversation: its state, assignee, team, service window and contact."""
    async with engine.connect() as conn:
        row = await conversation_row(conn, principal.tenant_id, key)
    return ConversationPublic(**_summary(row), version=row.version, attributes=dict(row.attributes or {}),
                              created_at=row.created_at)


@router.post("/conversations/{key}/notes", status_code=status.HTTP_201_CREATED, responses=NOT_FOUND)
async def create_note(key: ConversationKey, body: NoteCreate, principal: TenantDep, engine: EngineDep) -> NotePublic:
    """Add an internal note (customers never see notes)."""
    async with engine.begin() as conn:
        await conversation_row(conn, principal.tenant_id, key)
        row = (await conn.execute(conversation_notes.insert().values(
            id=str(uuid.uuid4()), tenant_id=principal.tenant_id, conversation_key=key, author=principal.actor,
            text=body.text).returning(*conversation_notes.c))).one()
    return _note(row)


@router.get("/conversations/{key}/notes", responses=NOT_FOUND)
async def list_notes(key: ConversationKey, principal: TenantDep, engine: EngineDep, page: PageDep) -> Page[NotePublic]:
    """The conversation's notes, oldest first, in pages."""
    query = select(conversation_notes).where(conversation_notes.c.tenant_id == principal.tenant_id,
                                             conversation_notes.c.conversation_key == key)
    async with engine.connect() as conn:
        await conversation_row(conn, principal.tenant_id, key)
        rows = list(await conn.execute(keyset(query, conversation_notes.c.created_at, conversation_notes.c.id, page)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
    return Page(items=[_note(r) for r in shown], next_cursor=cursor)


def _note(row: Any) -> NotePublic:
    return NotePublic(id=str(row.id), conversation_key=row.conversation_key, author=row.author, text=row.text,
                      created_at=row.created_at)
