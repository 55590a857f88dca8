"""The agent inbox: ``GET /v1/conversations`` (views, filters, search), tab counts, the waiting queue, one
conversation, its notes, and each user's read marker.

Conversations and contacts are written by the projector from the conversation processor's events,
so what is read here trails the processor by a moment. Listings are newest activity first, in the
pages of ``api.pages`` keyed on (last activity, key); the queue is oldest wait first. Each listed
conversation carries its last message, who handles it and, for a signed-in user, how many of the
customer's messages that user has not seen (``conversation_reads``: the highest message row the user
saw, set when the thread is opened). Every query is scoped by the caller's tenant (and read markers by
user); another tenant's conversation is a 404. Actions on a conversation are in ``api.inbox_actions``,
its thread and the contact's history in ``api.inbox_thread``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import Text, and_, column, false, func, or_, select, true, values
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from api.agent_models import Team
from api.auth import Principal, TenantDep
from api.deps import EngineDep
from api.inbox_models import (
    MAX_UNREAD,
    ConversationPublic,
    ConversationSummary,
    HandledBy,
    LastMessage,
    NoteCreate,
    NotePublic,
    ReadMarker,
    StateFilter,
    TabCounts,
)
from api.pages import Page, PageDep, keyset, page_of
from db.tables import contacts, conversation_notes, conversation_reads, conversations, messages, tenant_settings
from schemas.identity import is_bsuid
from schemas.outbound import SERVICE_WINDOW_S

router = APIRouter(prefix="/v1", tags=["inbox"])

ConversationKey = Annotated[str, Path(min_length=3, max_length=200, description='"{phone_number_id}:{wa_id}"')]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such conversation"}}
ACTIVITY = func.coalesce(conversations.c.last_message_at, conversations.c.created_at)
_FROM = conversations.outerjoin(contacts, and_(contacts.c.tenant_id == conversations.c.tenant_id,
                                               contacts.c.wa_id == conversations.c.wa_id))
_COLUMNS = (*conversations.c, contacts.c.profile_name, contacts.c.tags, contacts.c.attributes, contacts.c.opted_out,
            contacts.c.phone, contacts.c.user_id, contacts.c.username, contacts.c.id.label("contact_id"),
            ACTIVITY.label("activity"))
WAITING_SINCE = func.coalesce(conversations.c.state_changed_at, conversations.c.created_at)
Tag = Annotated[str | None, Query(min_length=1, max_length=100, description="only contacts with this tag")]
Search = Annotated[str | None, Query(min_length=1, max_length=100, description="name, username or number")]


def _summary(row: Any, ai_on: bool = True) -> dict[str, Any]:
    window = row.last_inbound_at + timedelta(seconds=SERVICE_WINDOW_S) if row.last_inbound_at else None
    return {"key": row.key, "phone_number_id": row.phone_number_id, "wa_id": row.wa_id,
            "profile_name": row.profile_name, "tags": list(row.tags or []), "opted_out": bool(row.opted_out),
            "phone": row.phone or (None if is_bsuid(row.wa_id) else row.wa_id), "user_id": row.user_id,
            "username": row.username, "state": row.state, "assignee_id": row.assignee_id, "team": row.team,
            "handoff_reason": row.handoff_reason, "last_message_at": row.last_message_at,
            "last_inbound_at": row.last_inbound_at, "window_open_until": window, "window_expires_at": window,
            "state_changed_at": row.state_changed_at, "handled_by": handled_by(row.state, ai_on),
            "contact_id": str(row.contact_id) if row.contact_id is not None else None}


def handled_by(state: str, ai_on: bool) -> HandledBy:
    """Who answers the customer in ``state``: the bot is the AI unless the tenant turned it off (rules only)."""
    if state == "bot":
        return "ai" if ai_on else "automation"
    return {"agent": "human", "queued": "queue"}.get(state, "nobody")  # type: ignore[return-value]


async def ai_on(conn: AsyncConnection, tenant_id: str) -> bool:
    """Whether the tenant's AI answers in the bot state (``tenant_settings.ai_provider`` is not ``off``)."""
    provider = (await conn.execute(select(tenant_settings.c.ai_provider).where(
        tenant_settings.c.tenant_id == tenant_id))).scalar()
    return provider != "off"


async def _last_messages(conn: AsyncConnection, tenant_id: str, keys: list[str]) -> dict[str, LastMessage]:
    """The newest message of each conversation of ``keys`` (at most a page of them)."""
    if not keys:
        return {}
    m = messages.c
    query = (select(m.conversation_key, m.direction, m.type, m.text, m.status,
                    func.coalesce(m.sent_at, m.created_at).label("at"))
             .where(m.tenant_id == tenant_id, m.conversation_key.in_(keys))
             .distinct(m.conversation_key).order_by(m.conversation_key, m.id.desc()))
    return {r.conversation_key: LastMessage(direction=r.direction, type=r.type, text=r.text, status=r.status, at=r.at)
            for r in await conn.execute(query)}


async def unread_counts(conn: AsyncConnection, tenant_id: str, user_id: str, keys: list[str]) -> dict[str, int]:
    """How many of the customer's messages in each conversation of ``keys`` the user has not seen, each count
    stopping at ``MAX_UNREAD`` (a lateral, limited scan of the conversation's newest messages)."""
    if not keys:
        return {}
    m, r = messages.c, conversation_reads.c
    listed = values(column("key", Text), name="listed").data([(k,) for k in keys])
    marked = listed.outerjoin(conversation_reads, and_(r.tenant_id == tenant_id, r.user_id == user_id,
                                                      r.conversation_key == listed.c.key))
    newest = (select(m.id).where(m.tenant_id == tenant_id, m.conversation_key == listed.c.key,
                                 m.direction == "inbound", m.id > func.coalesce(r.last_read_id, 0))
              .correlate(listed, conversation_reads).order_by(m.id.desc()).limit(MAX_UNREAD).lateral("newest"))
    query = (select(listed.c.key, func.count(newest.c.id).label("n"))
             .select_from(marked.join(newest, true())).group_by(listed.c.key))
    return {row.key: int(row.n) for row in await conn.execute(query)}


async def summaries(conn: AsyncConnection, principal: Principal, rows: list[Any]) -> list[ConversationSummary]:
    """The listed ``rows`` with their last message, who handles them and the caller's unread counts."""
    keys = [r.key for r in rows]
    on = await ai_on(conn, principal.tenant_id)
    last = await _last_messages(conn, principal.tenant_id, keys)
    unread = await unread_counts(conn, principal.tenant_id, principal.user_id, keys) if principal.user_id else None
    return [ConversationSummary(**_summary(r, on), last_message=last.get(r.key),
                                unread=None if unread is None else unread.get(r.key, 0)) for r in rows]


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


View = Literal["mine", "unassigned", "queued", "all"]
_UNASSIGNED = and_(conversations.c.assignee_id.is_(None), conversations.c.state.in_(("bot", "queued")))


@router.get("/conversations", responses={422: {"description": "a bad filter or cursor; view=mine for an API key"}})
async def list_conversations(
    principal: TenantDep, engine: EngineDep, page: PageDep,
    view: Annotated[View, Query(description="mine: assigned to the caller; unassigned: open (bot or queued) "
                                            "and held by no agent; queued: waiting for an agent")] = "all",
    state: Annotated[StateFilter | None, Query(description="open: every state but closed")] = None,
    team: Annotated[Team | None, Query()] = None, tag: Tag = None, q: Search = None,
) -> Page[ConversationSummary]:
    """The tenant's conversations, latest activity first, in pages, with their last message and unread count."""
    query = select(*_COLUMNS).select_from(_FROM).where(conversations.c.tenant_id == principal.tenant_id,
                                                       *_filters(principal, view, state, team, tag, q))
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, ACTIVITY, conversations.c.key, page, newest_first=True)))
        shown, cursor = page_of(rows, page, lambda r: (r.activity, r.key))
        items = await summaries(conn, principal, shown)
    return Page(items=items, next_cursor=cursor)


@router.get("/conversations/counts")
async def count_conversations(
    principal: TenantDep, engine: EngineDep,
    state: Annotated[StateFilter | None, Query(description="open: every state but closed")] = None,
    team: Annotated[Team | None, Query()] = None, tag: Tag = None, q: Search = None,
) -> TabCounts:
    """How many conversations each view holds (the inbox's tabs), with the same filters as the list."""
    c = conversations.c
    mine = func.count().filter(c.assignee_id == principal.user_id) if principal.user_id else None
    columns = [func.count().filter(_UNASSIGNED).label("unassigned"), func.count().filter(c.state == "queued")
               .label("queued"), func.count().label("all"), *([mine.label("mine")] if mine is not None else [])]
    query = select(*columns).select_from(_FROM).where(c.tenant_id == principal.tenant_id,
                                                      *_filters(principal, "all", state, team, tag, q))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one()
    return TabCounts(mine=row.mine if mine is not None else None, unassigned=row.unassigned, queued=row.queued,
                     all=row.all)


@router.get("/conversations/queue")
async def waiting_queue(principal: TenantDep, engine: EngineDep, page: PageDep,
                        team: Annotated[Team | None, Query()] = None) -> Page[ConversationSummary]:
    """The conversations waiting for a free agent, longest wait first (``state_changed_at``: since when)."""
    query = select(*_COLUMNS, WAITING_SINCE.label("since")).select_from(_FROM).where(
        conversations.c.tenant_id == principal.tenant_id, conversations.c.state == "queued",
        *([conversations.c.team == team] if team is not None else []))
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, WAITING_SINCE, conversations.c.key, page)))
        shown, cursor = page_of(rows, page, lambda r: (r.since, r.key))
        items = await summaries(conn, principal, shown)
    return Page(items=items, next_cursor=cursor)


def _filters(principal: Principal, view: str, state: str | None, team: str | None, tag: str | None,
             q: str | None) -> list[Any]:
    conditions: list[Any] = []
    if view == "mine":
        if principal.user_id is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "view=mine needs a signed-in user")
        conditions.append(conversations.c.assignee_id == principal.user_id)
    elif view == "unassigned":
        conditions.append(_UNASSIGNED)
    elif view == "queued":
        conditions.append(conversations.c.state == "queued")
    if state == "open":
        conditions.append(conversations.c.state != "closed")
    elif state is not None:
        conditions.append(conversations.c.state == state)
    if team is not None:
        conditions.append(conversations.c.team == team)
    if tag is not None:
        conditions.append(contacts.c.tags.contains([tag]))
    if q is not None and q.strip():
        conditions.append(_search(q.strip()))
    return conditions


@router.get("/conversations/{key}", responses=NOT_FOUND)
async def get_conversation(key: ConversationKey, principal: TenantDep, engine: EngineDep) -> ConversationPublic:
    """One conversation: its state, assignee, team, service window and contact."""
    async with engine.connect() as conn:
        row = await conversation_row(conn, principal.tenant_id, key)
        [summary] = await summaries(conn, principal, [row])
    return ConversationPublic(**summary.model_dump(), version=row.version, attributes=dict(row.attributes or {}),
                              created_at=row.created_at)


@router.post("/conversations/{key}/read", responses={
    **NOT_FOUND, 403: {"description": "read markers belong to signed-in users, not API keys"}})
async def mark_read(key: ConversationKey, principal: TenantDep, engine: EngineDep) -> ReadMarker:
    """The signed-in user has seen every message of the conversation so far (the marker never goes back)."""
    if principal.user_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "read markers belong to a signed-in user, not an API key")
    async with engine.begin() as conn:
        await conversation_row(conn, principal.tenant_id, key)
        newest = (await conn.execute(select(func.max(messages.c.id)).where(
            messages.c.tenant_id == principal.tenant_id, messages.c.conversation_key == key))).scalar() or 0
        stmt = insert(conversation_reads).values(tenant_id=principal.tenant_id, user_id=principal.user_id,
                                                 conversation_key=key, last_read_id=newest)
        marker = (await conn.execute(stmt.on_conflict_do_update(
            constraint="pk_conversation_reads",
            set_={"last_read_id": func.greatest(conversation_reads.c.last_read_id, stmt.excluded.last_read_id),
                  "read_at": func.now()}).returning(conversation_reads.c.last_read_id))).scalar_one()
        left = await unread_counts(conn, principal.tenant_id, principal.user_id, [key])
    return ReadMarker(conversation_key=key, last_read_id=marker, unread=left.get(key, 0))


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
