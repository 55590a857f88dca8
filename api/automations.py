"""A tenant's automation rules, managed by its admins: ``/v1/automations``.

Rules run in ``position`` order. A new rule goes last; ``PUT /v1/automations/order`` rewrites the
whole order at once and must name exactly the tenant's rules. Writes of one tenant's rules are
serialised by a transaction-scoped advisory lock, so concurrent creations never share a position.
After every committed change the tenant's configuration version is bumped, so the conversation
processor applies the change to the very next message. Executions are recorded by the processor
(through the projector) and read here, newest first, a page at a time.

Everything about a rule is checked when it is saved (``automations.rules``, plus here that an
assigned agent is a user of the tenant, and that a reply with a template passes the template registry of
each of the tenant's WhatsApp accounts whose registry was synced, as the send API checks a send), so a bad
rule is a 422 naming the field and never fails at a customer's message. A stored rule that no longer
validates is shown with its ``problem`` and never runs.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.agents import is_member
from api.auth import AdminDep
from api.automation_models import RuleExecutionPublic, RuleOrder, RulePublic, RuleToggle, UnreadableRulePublic
from api.deps import EngineDep, RedisDep
from api.pages import Page, PageDep, RankPageDep, encode_rank, keyset, page_of
from automations.rules import Assign, Reply, RuleSpec
from db.tables import automation_rules, phone_numbers, rule_executions
from templates import TemplateSendError
from templates.registry import Registry, template_of
from tenants.config import bump_config_version

router = APIRouter(prefix="/v1", tags=["automations"])

MAX_RULES = 200  # every inbound message is evaluated against all of them
RuleId = Annotated[uuid.UUID, Path()]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such rule"}}
AnyRule = RulePublic | UnreadableRulePublic


def _public(row: Any) -> AnyRule:
    fields = dict(id=str(row.id), position=row.position, name=row.name, enabled=row.enabled, stop=row.stop,
                  trigger=row.trigger, conditions=row.conditions, actions=row.actions, created_at=row.created_at,
                  updated_at=row.updated_at)
    try:
        return RulePublic.model_validate(fields)
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return UnreadableRulePublic.model_validate({**fields, "problem": problem})


async def _check_agents(conn: AsyncConnection, tenant_id: str, spec: RuleSpec) -> None:
    """422 naming the field when an ``assign`` action names someone who is not a user of the tenant."""
    for index, action in enumerate(spec.actions):
        if isinstance(action, Assign) and action.agent_id and not await is_member(conn, tenant_id, action.agent_id):
            raise RequestValidationError([{
                "type": "value_error", "loc": ("body", "actions", index, "assign", "agent_id"),
                "msg": "Value error, agent_id is not a user of this tenant", "input": action.agent_id}])


async def _check_templates(engine: AsyncEngine, tenant_id: str, spec: RuleSpec) -> None:
    """422 naming the action when a ``reply`` sends a template Meta would refuse (unknown once the WABA's
    registry was synced, not approved, wrong parameters). The rule may fire on any of the tenant's numbers, so
    the template is checked in every WABA they belong to."""
    replies = [(i, a) for i, a in enumerate(spec.actions) if isinstance(a, Reply) and template_of(a.message)]
    if not replies:
        return
    async with engine.connect() as conn:
        wabas = sorted(set((await conn.execute(select(phone_numbers.c.waba_id).where(
            phone_numbers.c.tenant_id == tenant_id, phone_numbers.c.waba_id.is_not(None)))).scalars()))
    registry = Registry(engine, ttl_s=0.0)
    for index, action in replies:
        for waba_id in wabas:
            try:
                await registry.check(tenant_id, waba_id, action.message)
            except TemplateSendError as exc:
                raise RequestValidationError([{
                    "type": "value_error", "loc": ("body", "actions", index, "reply", "message", "template"),
                    "msg": f"Value error, {exc.code}: {exc.reason} (WhatsApp Business Account {waba_id})",
                    "input": action.message.get("template")}]) from exc


def _columns(spec: RuleSpec) -> dict[str, Any]:
    data = spec.model_dump(mode="json")
    return {k: data[k] for k in ("name", "enabled", "stop", "trigger", "conditions", "actions")}


async def _lock(conn: AsyncConnection, tenant_id: str) -> None:
    """Serialise writers of the tenant's rules until the transaction ends."""
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"automation_rules:{tenant_id}", 0))))


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "rule not found")


async def _ordered(conn: AsyncConnection, tenant_id: str) -> list[AnyRule]:
    result = await conn.execute(select(automation_rules).where(automation_rules.c.tenant_id == tenant_id)
                                .order_by(automation_rules.c.position, automation_rules.c.id))
    return [_public(r) for r in result]


RULES_EXAMPLE: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {"example": {
    "items": RulePublic.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
    "next_cursor": None}}}}}


@router.get("/automations", responses=RULES_EXAMPLE)
async def list_rules(principal: AdminDep, engine: EngineDep, page: RankPageDep) -> Page[AnyRule]:
    """The tenant's rules in the order they run, a page at a time (``limit``, ``cursor``)."""
    rank = (automation_rules.c.position, automation_rules.c.id)
    query = select(automation_rules).where(automation_rules.c.tenant_id == principal.tenant_id)
    if page.after is not None:
        position, rule_id = page.after
        query = query.where(tuple_(*rank) > tuple_(literal(position), literal(rule_id, automation_rules.c.id.type)))
    async with engine.connect() as conn:
        rows = list(await conn.execute(query.order_by(*rank).limit(page.limit + 1)))
    shown = rows[:page.limit]
    cursor = encode_rank((shown[-1].position, str(shown[-1].id))) if len(rows) > page.limit else None
    return Page(items=[_public(r) for r in shown], next_cursor=cursor)


@router.post("/automations", status_code=status.HTTP_201_CREATED)
async def create_rule(body: RuleSpec, principal: AdminDep, engine: EngineDep, redis: RedisDep) -> AnyRule:
    """Add a rule after the tenant's last one."""
    tenant = principal.tenant_id
    await _check_templates(engine, tenant, body)
    async with engine.begin() as conn:
        await _check_agents(conn, tenant, body)
        await _lock(conn, tenant)
        count, last = (await conn.execute(select(func.count(), func.max(automation_rules.c.position))
                                          .where(automation_rules.c.tenant_id == tenant))).one()
        if count >= MAX_RULES:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"a tenant has at most {MAX_RULES} rules")
        row = (await conn.execute(automation_rules.insert().values(
            id=str(uuid.uuid4()), tenant_id=tenant, position=(last if last is not None else -1) + 1,
            **_columns(body)).returning(*automation_rules.c))).one()
    await bump_config_version(redis, tenant)
    return _public(row)


# Declared before the "/automations/{rule_id}" routes, which would otherwise take "order" for an id.
@router.put("/automations/order", responses={422: {"description": "the ids are not exactly the tenant's rules"}})
async def reorder_rules(body: RuleOrder, principal: AdminDep, engine: EngineDep, redis: RedisDep) -> list[AnyRule]:
    """Set the order the rules run in: every one of the tenant's rule ids, each once."""
    tenant, ids = principal.tenant_id, [str(i) for i in body.ids]
    async with engine.begin() as conn:
        await _lock(conn, tenant)
        current = set((await conn.execute(select(automation_rules.c.id)
                                          .where(automation_rules.c.tenant_id == tenant))).scalars())
        if len(ids) != len(set(ids)) or set(ids) != {str(i) for i in current}:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "'ids' must list every rule of the tenant exactly once")
        for position, rule_id in enumerate(ids):
            await conn.execute(update(automation_rules).where(
                automation_rules.c.tenant_id == tenant, automation_rules.c.id == rule_id,
                automation_rules.c.position != position).values(position=position, updated_at=func.now()))
        rules = await _ordered(conn, tenant)
    await bump_config_version(redis, tenant)
    return rules


@router.get("/automations/{rule_id}", responses=NOT_FOUND)
async def get_rule(rule_id: RuleId, principal: AdminDep, engine: EngineDep) -> AnyRule:
    """One rule."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(automation_rules).where(
            automation_rules.c.tenant_id == principal.tenant_id, automation_rules.c.id == str(rule_id)))).first()
    if row is None:
        raise _not_found()
    return _public(row)


async def _change(engine: AsyncEngine, redis: Redis, tenant_id: str, rule_id: uuid.UUID,
                  values: dict[str, Any], spec: RuleSpec | None = None) -> AnyRule:
    if spec is not None:
        await _check_templates(engine, tenant_id, spec)
    async with engine.begin() as conn:
        if spec is not None:
            await _check_agents(conn, tenant_id, spec)
        row = (await conn.execute(update(automation_rules).where(
            automation_rules.c.tenant_id == tenant_id, automation_rules.c.id == str(rule_id))
            .values(**values, updated_at=func.now()).returning(*automation_rules.c))).first()
    if row is None:
        raise _not_found()
    await bump_config_version(redis, tenant_id)
    return _public(row)


@router.put("/automations/{rule_id}", responses=NOT_FOUND)
async def replace_rule(rule_id: RuleId, body: RuleSpec, principal: AdminDep, engine: EngineDep,
                       redis: RedisDep) -> AnyRule:
    """Replace a rule's name, trigger, conditions, actions and flags (its position stays)."""
    return await _change(engine, redis, principal.tenant_id, rule_id, _columns(body), body)


@router.patch("/automations/{rule_id}", responses=NOT_FOUND)
async def toggle_rule(rule_id: RuleId, body: RuleToggle, principal: AdminDep, engine: EngineDep,
                      redis: RedisDep) -> AnyRule:
    """Switch a rule on or off."""
    return await _change(engine, redis, principal.tenant_id, rule_id, {"enabled": body.enabled})


@router.delete("/automations/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_rule(rule_id: RuleId, principal: AdminDep, engine: EngineDep, redis: RedisDep) -> Response:
    """Delete a rule (its recorded executions stay)."""
    async with engine.begin() as conn:
        deleted = (await conn.execute(automation_rules.delete().where(
            automation_rules.c.tenant_id == principal.tenant_id, automation_rules.c.id == str(rule_id))
            .returning(automation_rules.c.id))).first()
    if deleted is None:
        raise _not_found()
    await bump_config_version(redis, principal.tenant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


EXECUTIONS_EXAMPLE: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {"example": {
    "items": [RuleExecutionPublic.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
    "next_cursor": "WyIyMDI2LTEyLTAxVDA5OjE0OjAzKzAwOjAwIiwgInJ1bGUtZXhlYy0xIl0="}}}}}


@router.get("/automations/{rule_id}/executions", responses={**NOT_FOUND, **EXECUTIONS_EXAMPLE})
async def list_executions(rule_id: RuleId, principal: AdminDep, engine: EngineDep,
                          page: PageDep) -> Page[RuleExecutionPublic]:
    """The rule's runs, newest first, a page at a time (``limit``, ``cursor``)."""
    tenant = principal.tenant_id
    async with engine.connect() as conn:
        owned = (await conn.execute(select(automation_rules.c.id).where(
            automation_rules.c.tenant_id == tenant, automation_rules.c.id == str(rule_id)))).first()
        if owned is None:
            raise _not_found()
        query = select(rule_executions).where(rule_executions.c.tenant_id == tenant,
                                              rule_executions.c.rule_id == str(rule_id))
        rows = list(await conn.execute(keyset(query, rule_executions.c.executed_at, rule_executions.c.event_id, page,
                                              newest_first=True)))
    shown, cursor = page_of(rows, page, lambda r: (r.executed_at, r.event_id))
    return Page(items=[RuleExecutionPublic(id=r.id, rule_id=r.rule_id, rule_name=r.rule_name,
                                           conversation_key=r.conversation_key, trigger_event=r.trigger_event,
                                           actions=r.actions, stopped=r.stopped, executed_at=r.executed_at)
                       for r in shown], next_cursor=cursor)
