"""The inbox's thread and contact panel: ``GET /v1/conversations/{key}/thread`` and ``.../history``.

The thread is the send API's conversation listing (``api.messages``) with who sent each message: the
customer, an agent (by display name or email), the AI, an automation rule (by name), a campaign (by name)
or an API key (by name), resolved from the message's ``requested_by``; a template message is given the text
its recipient read (``templates.render`` of the registry's template with the parameters sent). The history
is the contact's other conversations (one per business number), the times this conversation was resolved,
and the campaigns the contact was part of, newest first and bounded. Every query is scoped by the caller's tenant.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import TenantDep
from api.deps import EngineDep
from api.inbox import NOT_FOUND, ConversationKey, conversation_row
from api.inbox_models import ContactCampaign, ContactHistory, PastConversation, Sender, ThreadItem, ThreadPage
from api.message_models import MessageItem
from api.messages import list_conversation_messages
from db.tables import (
    agents,
    api_keys,
    automation_rules,
    campaign_recipients,
    campaigns,
    conversation_events,
    conversations,
    message_templates,
    messages,
    phone_numbers,
    users,
)
from templates import render
from templates.registry import row_template, template_of

router = APIRouter(prefix="/v1", tags=["inbox"])

MAX_HISTORY = 20  # each list of the contact's history


@router.get("/conversations/{key}/thread", responses=NOT_FOUND)
async def thread(
    key: ConversationKey, principal: TenantDep, engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next` of the previous page")] = None,
) -> ThreadPage:
    """The conversation's messages, newest first, in pages, each with who sent it."""
    page = await list_conversation_messages(key, principal, engine, limit=limit, before=before)
    ids = [m.id for m in page.messages if m.direction == "outbound" and m.id]
    async with engine.connect() as conn:
        requested = {r.message_id: r.requested_by for r in await conn.execute(
            select(messages.c.message_id, messages.c.requested_by).where(
                messages.c.tenant_id == principal.tenant_id, messages.c.message_id.in_(ids)))} if ids else {}
        senders = await resolve_senders(conn, principal.tenant_id, set(requested.values()) - {None})
        shown = await template_texts(conn, principal.tenant_id, key, page.messages)
    items = [ThreadItem(**m.model_dump(), sender=Sender(kind="customer") if m.direction == "inbound"
                        else senders.get(requested.get(m.id) or "", Sender(kind="api")))
             for m in page.messages]
    for item in items:
        if item.text is None and item.id in shown:
            item.text = shown[item.id]
    return ThreadPage(messages=items, next=page.next)


async def template_texts(conn: AsyncConnection, tenant_id: str, key: str, page: list[MessageItem]) -> dict[str, str]:
    """The text each outbound template message of ``page`` showed its recipient, by message id (templates the
    registry of the conversation's number's WABA does not hold are left out)."""
    sent = {m.id: found for m in page if m.id and m.direction == "outbound" and m.type == "template"
            and (found := template_of(m.payload or {})) is not None}
    if not sent:
        return {}
    waba = select(phone_numbers.c.waba_id).where(phone_numbers.c.tenant_id == tenant_id,
                                                 phone_numbers.c.phone_number_id == key.partition(":")[0])
    t = message_templates.c
    rows = await conn.execute(select(message_templates).where(
        t.tenant_id == tenant_id, t.waba_id == waba.scalar_subquery(),
        tuple_(t.name, t.language).in_(list({(name, language) for name, language, _ in sent.values()}))))
    known = {(r.name, r.language): row_template(r) for r in rows}
    return {message_id: render(known[(name, language)], components)
            for message_id, (name, language, components) in sent.items() if (name, language) in known}


def _uuids(values: list[str]) -> list[str]:
    """The values that are UUIDs (anything else names nothing in a UUID column)."""
    found = []
    for value in values:
        try:
            found.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return found


async def resolve_senders(conn: AsyncConnection, tenant_id: str, requested: set[str]) -> dict[str, Sender]:
    """``requested_by`` values (``user:<id>``, ``automation:<rule id>``, ``automation:builtin:<keyword>``,
    ``ai:<provider>``, ``campaign:<id>``, ``api_key:<id>``) → who they are, named from the tenant's own rows."""
    by_kind: dict[str, list[str]] = {}
    for value in requested:
        kind, _, ident = value.partition(":")
        by_kind.setdefault(kind, []).append(ident)
    names: dict[str, str] = {}
    people = _uuids(by_kind.get("user", []))
    if people:
        query = (select(users.c.id, users.c.email, agents.c.display_name)
                 .select_from(users.outerjoin(agents, agents.c.user_id == users.c.id))
                 .where(users.c.tenant_id == tenant_id, users.c.id.in_(people)))
        names.update({f"user:{r.id}": r.display_name or r.email for r in await conn.execute(query)})
    for kind, table in (("automation", automation_rules), ("campaign", campaigns), ("api_key", api_keys)):
        found = _uuids(by_kind.get(kind, []))
        if found:
            rows = await conn.execute(select(table.c.id, table.c.name).where(
                table.c.tenant_id == tenant_id, table.c.id.in_(found)))
            names.update({f"{kind}:{r.id}": r.name for r in rows})
    senders: dict[str, Sender] = {}
    for value in requested:
        kind, _, ident = value.partition(":")
        if kind == "user":
            senders[value] = Sender(kind="agent", id=ident, name=names.get(value))
        elif kind == "automation":
            builtin = ident.removeprefix("builtin:") if ident.startswith("builtin:") else None
            senders[value] = Sender(kind="rule", id=ident,
                                    name=f"{builtin.upper()} keyword" if builtin else names.get(value))
        elif kind == "ai":
            senders[value] = Sender(kind="ai", id=ident, name="AI agent")
        elif kind == "campaign":
            senders[value] = Sender(kind="campaign", id=ident, name=names.get(value))
        else:
            senders[value] = Sender(kind="api", id=ident or None, name=names.get(value))
    return senders


@router.get("/conversations/{key}/history", responses=NOT_FOUND)
async def contact_history(key: ConversationKey, principal: TenantDep, engine: EngineDep) -> ContactHistory:
    """The contact's other conversations, this conversation's resolved episodes and the contact's campaigns."""
    tenant = principal.tenant_id
    async with engine.connect() as conn:
        row = await conversation_row(conn, tenant, key)
        others = list(await conn.execute(
            select(conversations.c.key, conversations.c.phone_number_id, conversations.c.state,
                   conversations.c.last_message_at)
            .where(conversations.c.tenant_id == tenant, conversations.c.wa_id == row.wa_id, conversations.c.key != key)
            .order_by(conversations.c.last_message_at.desc().nulls_last(), conversations.c.key).limit(MAX_HISTORY)))
        ev = conversation_events.c
        closed = list(await conn.execute(
            select(ev.at, ev.payload["cause"].astext.label("cause"))
            .where(ev.tenant_id == tenant, ev.conversation_key == key, ev.kind == "conversation_changed",
                   ev.payload["state"].astext == "closed")
            .order_by(ev.id.desc()).limit(MAX_HISTORY)))
        r, c = campaign_recipients.c, campaigns.c
        sent = list(await conn.execute(
            select(c.id, c.name, c.state, r.state.label("recipient_state"), r.reason, r.sent_at, r.read_at)
            .select_from(campaign_recipients.join(campaigns, c.id == r.campaign_id))
            .where(r.tenant_id == tenant, c.tenant_id == tenant, r.wa_id == row.wa_id)
            .order_by(r.queued_at.desc()).limit(MAX_HISTORY)))
    past = [PastConversation(conversation_key=key, phone_number_id=row.phone_number_id, state="closed",
                             closed_at=e.at, closed_by=e.cause, last_message_at=None) for e in closed]
    past += [PastConversation(conversation_key=o.key, phone_number_id=o.phone_number_id, state=o.state,
                              closed_at=None, closed_by=None, last_message_at=o.last_message_at) for o in others]
    return ContactHistory(conversations=past[:MAX_HISTORY], campaigns=[_campaign(s) for s in sent])


def _campaign(row: Any) -> ContactCampaign:
    return ContactCampaign(campaign_id=str(row.id), name=row.name, state=row.state,
                           recipient_state=row.recipient_state, reason=row.reason, sent_at=row.sent_at,
                           read_at=row.read_at)
