"""What agents do to a conversation: reply, assign, transfer, resolve, reopen.

Each action is a command for the conversation processor, the conversation's single writer, on
``conversations.commands`` keyed by the conversation; the API answers 202 once the broker
acknowledged it, and the state change shows in ``GET /v1/conversations/{key}`` when the processor
has applied it. A reply is a ``SendCommand`` like ``POST /v1/messages`` (same idempotency and
validation, template and media checks); a person's reply is an agent's (``author="agent"``), which takes the
conversation over from the bot. A reply may name one of the registry's templates and its values instead of a
message (``template``): the reply builds Meta's components, for the composer once the 24-hour window closed.

What an agent may do (admins and API keys may do all of it to any conversation of the tenant):
reply to and resolve only conversations assigned to them or to nobody (replying to an unassigned
one claims it), transfer only conversations they hold, assign only to themselves; anything else
is a 403 that says why. A colleague's conversation is theirs until they or an admin hand it over.
The check reads the inbox's view of the conversation, which trails the conversation processor by
a moment.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.agents import is_member
from api.auth import Principal, TenantDep
from api.commands import Action, conversation_command, publish
from api.deps import EngineDep, ProducerDep, RedisDep, SettingsDep
from api.inbox import ConversationKey, conversation_row
from api.inbox_models import AssignRequest, CommandAccepted, ReplyCreate, TemplateReply, TransferRequest
from api.media import refuse_media
from api.message_models import MessageAccepted
from api.messages import queue_send, send_command, sender_number
from api.template_models import SendRefusal
from api.templates import refuse_template
from broker.producer import AsyncProducer
from config.settings import IngressSettings
from db.tables import message_templates, phone_numbers
from templates import TemplateSendError, send_components, variables
from templates.registry import row_template

router = APIRouter(prefix="/v1", tags=["inbox"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "the tenant has no such conversation"},
    503: {"description": "the command could not be queued; retry"}}
UNKNOWN_AGENT = "agent_id is not a user of this tenant"


@router.post("/conversations/{key}/reply", status_code=status.HTTP_202_ACCEPTED, responses={
    **RESPONSES, 403: {"description": "an agent may reply only to conversations assigned to them or to nobody"},
    409: {"description": "the idempotency_key is in use by a request in progress, or the "
                                      "conversation's number is no longer connected"},
    422: {"description": "a template message Meta would refuse (`detail`: `{code, reason, meta_code}`), an "
                         "unknown template or variable, or media the tenant does not hold"}})
async def reply(key: ConversationKey, body: ReplyCreate, principal: TenantDep, engine: EngineDep, redis: RedisDep,
                producer: ProducerDep, settings: SettingsDep) -> MessageAccepted:
    """Send a message to the conversation's customer; follow it with ``GET /v1/messages/{id}``.

    Outside the 24-hour service window only a template is delivered: a free-form reply then fails
    with the reason ``outside_service_window``.
    """
    async with engine.connect() as conn:
        row = await conversation_row(conn, principal.tenant_id, key)
    _may_act(principal, row, "reply to")
    try:
        sender = await sender_number(engine, principal.tenant_id, row.phone_number_id)
    except HTTPException as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "the conversation's phone number is no longer connected") from exc
    if body.template is not None:
        message = await template_message(engine, principal.tenant_id, sender, body.template)
    else:
        assert body.message is not None  # ReplyCreate holds exactly one of them
        message = body.message.graph_message()
    await refuse_template(engine, principal.tenant_id, sender, message)
    await refuse_media(engine, principal.tenant_id, message)
    command = send_command(principal, phone_number_id=sender, to=row.wa_id, message=message,
                           idempotency_key=body.idempotency_key, author="agent" if principal.user_id else "api")
    return await queue_send(command, body.idempotency_key, engine=engine, producer=producer, settings=settings)


async def template_message(engine: AsyncEngine, tenant_id: str, phone_number_id: str,
                           chosen: TemplateReply) -> dict[str, Any]:
    """The Graph template message of a registry template and its values, sent from ``phone_number_id``."""
    t = message_templates.c
    async with engine.connect() as conn:
        row = (await conn.execute(select(message_templates).where(
            t.tenant_id == tenant_id, t.id == str(chosen.id)))).first()
        waba_id = (await conn.execute(select(phone_numbers.c.waba_id).where(
            phone_numbers.c.tenant_id == tenant_id, phone_numbers.c.phone_number_id == phone_number_id))).scalar()
    if row is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the tenant has no such template")
    if row.waba_id != waba_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "this template belongs to another WhatsApp "
                                                                   "Business Account than the conversation's number")
    template = row_template(row)
    unknown = sorted(set(chosen.values) - {v.ref for v in variables(template)})
    if unknown:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"template {row.name} has no variable {', '.join(unknown)}")
    try:
        components = send_components(template, chosen.values)
    except TemplateSendError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, SendRefusal(
            code=exc.code, reason=exc.reason, meta_code=exc.meta_code).model_dump()) from exc
    content: dict[str, Any] = {"name": row.name, "language": {"code": row.language}}
    if components:
        content["components"] = components
    return {"type": "template", "template": content}


@router.post("/conversations/{key}/assign", status_code=status.HTTP_202_ACCEPTED, responses={
    **RESPONSES, 403: {"description": "an agent may assign only to itself"},
    422: {"description": UNKNOWN_AGENT}})
async def assign(key: ConversationKey, body: AssignRequest, principal: TenantDep, engine: EngineDep,
                 producer: ProducerDep, settings: SettingsDep) -> CommandAccepted:
    """Give the conversation to an agent (the AI stays silent while an agent has it)."""
    agent_id = str(body.agent_id)
    if principal.role != "admin" and agent_id != principal.user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent may assign conversations only to itself")
    return await _command(engine, producer, settings, principal, key, "assign", agent_id=agent_id)


@router.post("/conversations/{key}/transfer", status_code=status.HTTP_202_ACCEPTED, responses={
    **RESPONSES, 403: {"description": "an agent may transfer only conversations they hold"},
    422: {"description": UNKNOWN_AGENT}})
async def transfer(key: ConversationKey, body: TransferRequest, principal: TenantDep, engine: EngineDep,
                   producer: ProducerDep, settings: SettingsDep) -> CommandAccepted:
    """Hand the conversation to another agent, or to a team's queue."""
    agent_id = str(body.agent_id) if body.agent_id is not None else None
    return await _command(engine, producer, settings, principal, key, "transfer", agent_id=agent_id, team=body.team,
                          held=True)


@router.post("/conversations/{key}/resolve", status_code=status.HTTP_202_ACCEPTED, responses={
    **RESPONSES, 403: {"description": "an agent may resolve only conversations assigned to them or to nobody"}})
async def resolve(key: ConversationKey, principal: TenantDep, engine: EngineDep, producer: ProducerDep,
                  settings: SettingsDep) -> CommandAccepted:
    """Close the conversation: the agent's capacity is freed and the bot answers the customer's next message."""
    return await _command(engine, producer, settings, principal, key, "resolve", held=False)


@router.post("/conversations/{key}/reopen", status_code=status.HTTP_202_ACCEPTED, responses=RESPONSES)
async def reopen(key: ConversationKey, principal: TenantDep, engine: EngineDep, producer: ProducerDep,
                 settings: SettingsDep) -> CommandAccepted:
    """Put a closed (or bot-handled) conversation back in its team's queue for an agent."""
    return await _command(engine, producer, settings, principal, key, "reopen")


def _may_act(principal: Principal, row: Any, verb: str, *, held: bool = False) -> None:
    """403 unless the principal may ``verb`` the conversation: admins always; an agent when it is theirs,
    or (unless ``held``) nobody's."""
    if principal.role == "admin" or row.assignee_id == principal.user_id:
        return
    if row.assignee_id is None and not held:
        return
    whose = "nobody" if row.assignee_id is None else "a colleague"
    allowed = "they hold" if held else "assigned to them or to nobody"
    raise HTTPException(status.HTTP_403_FORBIDDEN, f"this conversation is assigned to {whose}: an agent may {verb} "
                                                   f"only conversations {allowed} (an admin can reassign it)")


async def _command(engine: AsyncEngine, producer: AsyncProducer, settings: IngressSettings, principal: Principal,
                   key: str, action: Action, *, agent_id: str | None = None, team: str | None = None,
                   held: bool | None = None) -> CommandAccepted:
    """Check the conversation (and the agent) belong to the tenant, and that the principal may act on it
    (``held``: see ``_may_act``; None: anyone of the tenant may), then publish the command."""
    async with engine.connect() as conn:
        row = await conversation_row(conn, principal.tenant_id, key)
        if held is not None:
            _may_act(principal, row, action, held=held)
        if agent_id is not None and not await is_member(conn, principal.tenant_id, agent_id):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, UNKNOWN_AGENT)
    command = conversation_command(tenant_id=principal.tenant_id, key=key, action=action, actor=principal.actor,
                                   agent_id=agent_id, team=team)
    await publish(producer, settings, command)
    return CommandAccepted(command_id=command.event_id)
