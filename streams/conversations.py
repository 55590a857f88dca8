"""The conversation processor: the single writer of each conversation's state machine.

It reads ``wa.inbound``, ``conversations.commands`` and ``ai.decisions`` (all keyed by conversation,
range assignment: one conversation lives on one partition of each, owned by one worker).

- **An inbound message** refreshes the 24-hour window (also written to the marker the dispatcher
  reads), then the built-in STOP/START keywords, then the tenant's automation rules run in order
  (every execution is recorded). In ``bot`` with nothing handled by a rule, the AI is asked
  (``ai.requests``); a message the AI cannot read, or a tenant with the AI off, goes to a human.
- **An AI decision** is applied only if the conversation is still in ``bot`` at the version it was
  asked at, for its latest message; otherwise it is discarded and the reason recorded. A reply at
  or above the tenant's threshold is sent; anything else hands the conversation over.
- **Waiting for a person.** When a conversation begins to wait (handed over by the AI, a rule, no AI or
  an unreadable message; queued, or given to an agent who has not answered yet) and nothing else told
  the customer so, the tenant's acknowledgement (``automations.waiting``) is sent once per waiting
  episode: the in-hours text, or, queued while the tenant is closed, the out-of-hours text with the next
  opening. An episode begins when the conversation leaves ``bot``/``closed`` for a person; the
  acknowledgement, a rule's reply or an agent's reply answers it. While ``queued`` (nobody took it yet),
  a new question still goes to the AI when the tenant lets it answer while waiting: a confident answer
  is sent and the conversation keeps its place in the queue; anything else sends nothing more. Once an
  agent holds it, the AI stays silent.
- **Commands** from the agent API: a ``send`` (an agent's reply takes the conversation over at
  once), ``assign``, ``transfer``, ``resolve`` (closed: the bot answers the next message; rules with
  the resolved trigger run), ``reopen``, and ``claim`` (assignment gave a queued conversation to an
  agent who became free).

Hand-off picks an online agent with room through ``agents.assignment`` or queues the conversation;
capacity freed by a resolve or transfer is offered to the oldest waiting conversation at once.
Every change is published to ``conversations.events``; sends go to ``outbound.interactive`` (or
fail locally outside the window). Before failing a send for a closed window, the processor asks
PostgreSQL: the projector may have stored an inbound message this processor has not read yet.

State (``streams.conversation_state``) is written after the batch's outputs were acknowledged, to
PostgreSQL and Redis (``streams.conversation_store``, which also keeps the states of the partitions this
worker holds in memory until they are revoked); a state Redis lost or may hold from before a
restart is read from PostgreSQL, and a conversation that was waiting for a person goes back in its
queue. Redelivery changes nothing: an inbound message whose wamid the state remembers, a command or an
AI answer already applied, is ignored (and counted), even when the router's marks in Redis are gone.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from confluent_kafka import Message
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from redis.asyncio import Redis
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.assignment import Assigner
from automations.engine import Context, Execution, builtin_keyword, evaluate
from automations.rules import AddTag, Assign, Handoff, OptIn, OptOut, RemoveTag, Reply, Resolve, SetAttribute
from automations.waiting import AUTHOR as WAITING_ACK
from automations.waiting import acknowledgement
from broker.runtime import Output
from db.tables import conversations
from schemas.ai import AiDecision, AiRequest, Turn
from schemas.catalogue import (
    AI_DECISIONS,
    AI_REQUESTS,
    CONVERSATIONS_COMMANDS,
    CONVERSATIONS_EVENTS,
    CONVERSATIONS_GROUP,
    INBOUND,
    OUTBOUND_INTERACTIVE,
    OUTBOUND_RESULTS,
    STATUSES,
    TopicSpec,
)
from schemas.conversation import (
    AiOutcome,
    ContactChange,
    ContactChanged,
    ConversationChanged,
    ConversationCommand,
    RuleExecuted,
)
from schemas.events import InboundMessage
from schemas.outbound import (
    OUTSIDE_SERVICE_WINDOW,
    SERVICE_WINDOW_S,
    MessageQueued,
    OutboundRequest,
    SendCommand,
    local_failure,
    local_failure_status,
)
from streams.conversation_state import Conversation
from streams.conversation_store import ConversationStore, DurableStates, PostgresStates
from tenants.config import ConfigCache, TenantConfig

log = logging.getLogger(__name__)

OPT_OUT_REPLY = "You will no longer receive marketing messages from us. Reply START to subscribe again."
OPT_IN_REPLY = "You are subscribed again. Reply STOP to unsubscribe."
Record = InboundMessage | SendCommand | ConversationCommand | AiDecision
# One parse per record: the JSON is read once, its ``kind`` choosing the model (built once, here).
RECORDS: TypeAdapter[Record] = TypeAdapter(Annotated[Record, Field(discriminator="kind")])
UNKNOWN_KIND = frozenset({"union_tag_invalid", "union_tag_not_found"})
# When the customer last wrote, as the projector stored it (built once, not per send).
LAST_INBOUND = select(conversations.c.last_inbound_at).where(
    conversations.c.key == bindparam("key"), conversations.c.tenant_id == bindparam("tenant_id"))


def _now() -> datetime:
    return datetime.now(UTC)


def _message_id(idempotency_key: str) -> str:
    """A stable message id for a send the processor itself decides (a replayed batch gives the same id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aerostic:{idempotency_key}"))


def _text_message(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body}}


def reply_payload(payload: dict[str, Any]) -> str | None:
    """The payload of a quick-reply button, or the id of an interactive button/list reply."""
    button = payload.get("button")
    if isinstance(button, dict) and button.get("payload"):
        return str(button["payload"])
    interactive = payload.get("interactive")
    if isinstance(interactive, dict):
        for kind in ("button_reply", "list_reply"):
            reply = interactive.get(kind)
            if isinstance(reply, dict) and reply.get("id"):
                return str(reply["id"])
    return None


class ConversationProcessor:
    """The ``Processor`` of ``wa.inbound`` + ``conversations.commands`` + ``ai.decisions``."""

    group_id = CONVERSATIONS_GROUP

    def __init__(self, redis: Redis, engine: AsyncEngine, *, prefix: str, configs: ConfigCache | None = None,
                 states: DurableStates | None = None) -> None:
        self.redis = redis
        self.engine = engine
        self.reads = engine.execution_options(isolation_level="AUTOCOMMIT")  # one SELECT: no BEGIN/ROLLBACK
        self.store = ConversationStore(redis, states or PostgresStates(engine))
        self.prefix = prefix
        self.topics = [INBOUND.full_name(prefix), CONVERSATIONS_COMMANDS.full_name(prefix),
                       AI_DECISIONS.full_name(prefix)]
        self.assigner = Assigner(redis)
        self.configs = configs or ConfigCache(redis, engine)
        self._convs: dict[str, Conversation] = {}
        self._tenants: dict[str, TenantConfig] = {}
        self._dirty: set[str] = set()
        self._back: dict[str, Conversation] = {}  # read from PostgreSQL or checked: written to Redis with the batch
        self._out: list[Output] = []
        self._redelivered: list[str] = []
        self._replies = 0  # messages to customers decided in this process (tells whether a step replied)
        self.redelivered = 0  # records ignored because they were already handled, since start

    # --- the batch --------------------------------------------------------------------------

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        records = [r for r in (self._decode(m) for m in batch) if r is not None]
        self._convs = await self._load({r.conversation_key for r in records})
        self._tenants = await self.configs.get_many({r.tenant_id for r in records if r.tenant_id})
        self._dirty, self._out, self._redelivered = set(), [], []
        for record in records:
            if isinstance(record, InboundMessage):
                await self._inbound(record)
            elif isinstance(record, SendCommand):
                await self._send_command(record)
            elif isinstance(record, ConversationCommand):
                await self._command(record)
            else:
                await self._decision(record)
        if self._redelivered:
            self.redelivered += len(self._redelivered)
            log.info("%d record(s) already handled were ignored (%d since start): %s", len(self._redelivered),
                     self.redelivered, ", ".join(self._redelivered[:5]))
        return self._out

    async def saved(self) -> None:
        changed = {k: self._convs[k] for k in self._dirty if self._convs[k].tenant_id is not None}
        back = {k: c for k, c in self._back.items() if k not in changed}
        kept = {k: c for k, c in self._convs.items() if c.tenant_id is not None and k not in changed and k not in back}
        await self.store.save(changed, back, kept)
        self._back = {}

    def revoked(self) -> None:
        """The runtime's consumer gave partitions up (on its polling thread): their states are read afresh."""
        self.store.revoked()

    def _decode(self, msg: Message) -> Record | None:
        try:
            record = RECORDS.validate_json(msg.value() or b"")
        except ValidationError as exc:  # the runtime dead-letters it
            first = exc.errors()[0]
            if first["type"] in UNKNOWN_KIND and not first["loc"]:
                raise ValueError(f"record of unknown kind {first.get('ctx', {}).get('tag')!r} on {msg.topic()}") \
                    from exc
            raise ValueError(f"undecodable record of {msg.topic()}: {exc}") from exc
        return record if record.tenant_id else None

    async def _load(self, keys: set[str]) -> dict[str, Conversation]:
        states, self._back = await self.store.load(keys)
        # A conversation waiting for a person may have lost its place in the queue with Redis: put it back (at
        # its original place: ``requeue`` never moves one that is still there).
        for key, conv in self._back.items():
            await self._requeue(key, conv)
        pending = await self.store.to_requeue()  # after a start or a Redis restart
        while pending:
            await self._requeue(*pending[0])
            pending.popleft()
        return states

    async def _requeue(self, key: str, conv: Conversation) -> None:
        if conv.state == "queued" and conv.tenant_id:
            await self.assigner.requeue(conv.tenant_id, key, conv.team, conv.queued_at or time.time())

    def _emit(self, spec: TopicSpec, key: str, event: BaseModel) -> None:
        self._out.append(Output(spec.full_name(self.prefix), key.encode(), event.model_dump_json(
            exclude_none=True).encode()))

    def _config(self, tenant_id: str) -> TenantConfig:
        return self._tenants.get(tenant_id) or TenantConfig(tenant_id, 0)

    # --- state changes ----------------------------------------------------------------------

    def _changed(self, key: str, conv: Conversation, cause: str) -> None:
        """Record the conversation's new state (its version grows)."""
        assert conv.tenant_id is not None
        conv.version += 1
        self._dirty.add(key)
        pnid, _, wa_id = key.partition(":")
        self._emit(CONVERSATIONS_EVENTS, key, ConversationChanged(
            event_id=f"{key}:v{conv.version}", tenant_id=conv.tenant_id, conversation_key=key, phone_number_id=pnid,
            wa_id=wa_id, state=conv.state, assignee_id=conv.assignee_id, team=conv.team,
            cause=cause, reason=conv.reason, version=conv.version, at=_now()))

    def _contact_changed(self, key: str, conv: Conversation, event_id: str, change: ContactChange) -> None:
        assert conv.tenant_id is not None
        self._dirty.add(key)
        self._emit(CONVERSATIONS_EVENTS, key, ContactChanged(
            event_id=event_id, tenant_id=conv.tenant_id, wa_id=key.partition(":")[2], tags=sorted(conv.tags),
            attributes=conv.attributes, opted_out=conv.opted_out, at=_now(), change=change))

    async def _hand_off(self, key: str, conv: Conversation, *, team: str | None, reason: str | None,
                        cause: str) -> None:
        """To a free agent (of ``team``), else the queue."""
        assert conv.tenant_id is not None
        self._episode(conv)
        await self._release(key, conv)
        conv.team, conv.reason = team, reason
        agent = await self.assigner.pick(conv.tenant_id, key, team=team)
        conv.state, conv.assignee_id = ("agent", agent) if agent else ("queued", None)
        if agent is None:
            conv.queued_at = time.time()
        self._changed(key, conv, cause)

    async def _assign_to(self, key: str, conv: Conversation, agent_id: str, cause: str) -> None:
        """Give the conversation to ``agent_id`` (a person's decision: capacity is counted, not checked)."""
        assert conv.tenant_id is not None
        self._episode(conv)
        if conv.assignee_id != agent_id:
            await self._release(key, conv)
            await self.assigner.reserve(conv.tenant_id, agent_id)
        await self.assigner.unqueue(conv.tenant_id, key, conv.team)
        conv.state, conv.assignee_id = "agent", agent_id
        self._changed(key, conv, cause)

    @staticmethod
    def _episode(conv: Conversation) -> None:
        """A conversation about to be given to a person: leaving the bot begins a new waiting episode."""
        if conv.state not in ("queued", "agent"):
            conv.waiting_answered = False

    def _acknowledge(self, key: str, conv: Conversation, *, trigger: str, replied: bool, at: datetime) -> None:
        """Tell a customer who waits for a person, once per waiting episode, unless a reply already did."""
        assert conv.tenant_id is not None
        if conv.state not in ("queued", "agent") or conv.waiting_answered:
            return
        replies = self._config(conv.tenant_id).waiting
        if not replied and not replies.acknowledge:
            return
        conv.waiting_answered = True
        self._dirty.add(key)
        if replied:
            return
        # Someone took it already: they reply shortly, whatever the hours say.
        hours = self._config(conv.tenant_id).business_hours if conv.state == "queued" else None
        self._reply(key, conv, _text_message(acknowledgement(replies, hours, at)),
                    idempotency_key=f"{trigger}:waiting_ack", requested_by=WAITING_ACK)

    async def _release(self, key: str, conv: Conversation) -> None:
        """The assignee no longer holds this conversation: its freed room goes to the oldest waiting one."""
        assert conv.tenant_id is not None
        if conv.state == "queued":
            await self.assigner.unqueue(conv.tenant_id, key, conv.team)
        agent, conv.assignee_id = conv.assignee_id, None
        if agent is None or conv.state != "agent":
            return
        await self.assigner.release(conv.tenant_id, agent)
        claimed = await self.assigner.claim(conv.tenant_id, agent)
        if claimed is not None:
            self._emit(CONVERSATIONS_COMMANDS, claimed, ConversationCommand(
                event_id=f"claim:{claimed}:{uuid.uuid4()}", tenant_id=conv.tenant_id, conversation_key=claimed,
                action="claim", agent_id=agent, actor="assignment", at=_now()))

    # --- inbound ----------------------------------------------------------------------------

    async def _inbound(self, event: InboundMessage) -> None:
        key, tenant_id = event.conversation_key, event.tenant_id
        assert tenant_id is not None
        conv = self._convs.setdefault(key, Conversation())
        if conv.tenant_id not in (None, tenant_id):  # the number moved to another tenant: start afresh
            conv = self._convs[key] = conv.successor()
        first = conv.is_new
        conv.tenant_id = tenant_id
        sent_at = event.timestamp.timestamp()
        self._customer_wrote(key, conv, sent_at)
        if conv.handled_inbound(event.wamid, sent_at):
            self._redelivered.append(event.wamid)  # the router dedupes too, but its marks are only in Redis
            return
        conv.note_inbound(event.wamid, sent_at)
        conv.profile_name = event.profile_name or conv.profile_name
        conv.version += 1
        conv.remember("customer", event.text)
        self._dirty.add(key)
        if conv.state == "closed":
            conv.state = "bot"
            self._changed(key, conv, "inbound")
        config = self._config(tenant_id)
        keyword = builtin_keyword(event.text)
        if keyword is not None:
            await self._opt(key, conv, event, keyword)
            return
        ctx = Context(event="message", at=event.timestamp, text=event.text, payload=reply_payload(event.payload),
                      first_message=first, state=conv.state, tags=frozenset(conv.tags),
                      attributes=dict(conv.attributes), business_hours=config.business_hours)
        replies = self._replies
        handled = await self._run_rules(key, conv, evaluate(config.rules, ctx), trigger=event.wamid)
        if handled:
            pass
        elif conv.state == "queued" and config.waiting.ai_answers_while_waiting:
            if event.text and config.ai_provider != "off":  # the AI may still answer: the queue keeps its place
                self._ask_ai(key, conv, event, config)
        elif conv.state != "bot":
            pass
        elif config.ai_provider == "off":
            await self._hand_off(key, conv, team=None, reason="the AI agent is off", cause="no_ai")
        elif not event.text:
            await self._hand_off(key, conv, team=None, reason=f"a {event.type} message needs a person",
                                 cause="unreadable")
        else:
            self._ask_ai(key, conv, event, config)
        self._acknowledge(key, conv, trigger=event.wamid, replied=self._replies > replies, at=event.timestamp)

    def _ask_ai(self, key: str, conv: Conversation, event: InboundMessage, config: TenantConfig) -> None:
        assert conv.tenant_id is not None and event.text
        history = [Turn(role=t["role"], text=t["text"]) for t in conv.history[:-1]]
        self._emit(AI_REQUESTS, key, AiRequest(
            event_id=f"{event.wamid}:ai", tenant_id=conv.tenant_id, conversation_key=key,
            message_wamid=event.wamid, text=event.text, history=history, version=conv.version, requested_at=_now(),
            provider="openai" if config.ai_provider == "openai" else "offline", threshold=config.ai_threshold,
            config_version=config.version))

    def _customer_wrote(self, key: str, conv: Conversation, at: float) -> None:
        """The customer's message at ``at`` (epoch s) opens the window, unless a later one already did."""
        if at > conv.last_inbound_at:
            conv.last_inbound_at, conv.window_until = at, at + SERVICE_WINDOW_S
            self._dirty.add(key)

    async def _opt(self, key: str, conv: Conversation, event: InboundMessage, keyword: str) -> None:
        """The built-in STOP/START: campaign opt-out or opt-in, confirmed to the customer."""
        assert conv.tenant_id is not None
        conv.opted_out = keyword == "opt_out"
        self._contact_changed(key, conv, f"{event.wamid}:{keyword}", ContactChange(type=keyword, source="keyword"))
        body = OPT_OUT_REPLY if conv.opted_out else OPT_IN_REPLY
        self._reply(key, conv, _text_message(body), idempotency_key=f"{event.wamid}:{keyword}",
                    requested_by=f"automation:builtin:{keyword}")
        self._emit(CONVERSATIONS_EVENTS, key, RuleExecuted(
            event_id=f"{event.wamid}:builtin:{keyword}", tenant_id=conv.tenant_id, conversation_key=key,
            rule_id=f"builtin:{keyword}", rule_name="STOP / UNSUBSCRIBE" if conv.opted_out else "START / SUBSCRIBE",
            trigger_event=event.wamid, actions=[{"type": keyword}, {"type": "reply", "message": _text_message(body)}],
            stopped=True, at=_now()))

    async def _run_rules(self, key: str, conv: Conversation, executions: list[Execution], *, trigger: str) -> bool:
        """Apply the matched rules' actions in order; True when one answered, routed or stopped the rest."""
        assert conv.tenant_id is not None
        handled = False
        for execution in executions:
            for index, action in enumerate(execution.actions):
                marker = f"{trigger}:{execution.rule_id}:{index}"
                if isinstance(action, Reply):
                    self._reply(key, conv, action.message, idempotency_key=marker,
                                requested_by=f"automation:{execution.rule_id}")
                    handled = True
                elif isinstance(action, AddTag | RemoveTag | SetAttribute | OptOut | OptIn):
                    self._contact_action(conv, action)
                    self._contact_changed(key, conv, marker, ContactChange.model_validate(
                        {**action.model_dump(), **({"source": "rule"} if isinstance(action, OptOut | OptIn) else {})}))
                elif isinstance(action, Assign) and action.agent_id:
                    await self._assign_to(key, conv, action.agent_id, "rule")
                    handled = True
                elif isinstance(action, Assign | Handoff):
                    reason = getattr(action, "reason", None) or f"rule: {execution.name}"
                    await self._hand_off(key, conv, team=action.team, reason=reason, cause="rule")
                    handled = True
                elif isinstance(action, Resolve):
                    await self._resolve(key, conv, cause="rule", run_rules=False)
                    handled = True
            handled = handled or execution.stopped
            self._emit(CONVERSATIONS_EVENTS, key, RuleExecuted(
                event_id=f"{trigger}:{execution.rule_id}", tenant_id=conv.tenant_id, conversation_key=key,
                rule_id=execution.rule_id, rule_name=execution.name, trigger_event=trigger,
                actions=[a.model_dump() for a in execution.actions], stopped=execution.stopped, at=_now()))
        return handled

    @staticmethod
    def _contact_action(conv: Conversation, action: AddTag | RemoveTag | SetAttribute | OptOut | OptIn) -> None:
        if isinstance(action, AddTag) and action.tag not in conv.tags:
            conv.tags = [*conv.tags, action.tag]
        elif isinstance(action, RemoveTag):
            conv.tags = [t for t in conv.tags if t != action.tag]
        elif isinstance(action, SetAttribute):
            conv.attributes = {**conv.attributes, action.key: action.value}
        elif isinstance(action, OptOut | OptIn):
            conv.opted_out = isinstance(action, OptOut)

    # --- AI ---------------------------------------------------------------------------------

    async def _decision(self, decision: AiDecision) -> None:
        key = decision.conversation_key
        conv = self._convs.setdefault(key, Conversation())
        why = None
        waiting = conv.state == "queued" and self._config(decision.tenant_id).waiting.ai_answers_while_waiting
        if conv.tenant_id != decision.tenant_id:
            why = "unknown conversation"
        elif conv.state != "bot" and not waiting:
            why = f"the conversation is {conv.state}" + (" (a person took over)" if conv.state == "agent" else "")
        elif decision.message_wamid != conv.last_wamid:
            why = "a newer message arrived"
        elif decision.version != conv.version:
            why = "the conversation changed since the AI was asked"
        elif conv.handled_command(f"ai:{decision.message_wamid}"):
            why = "already applied"
        self._emit(CONVERSATIONS_EVENTS, key, AiOutcome(
            event_id=f"{decision.event_id}:outcome", tenant_id=decision.tenant_id, conversation_key=key,
            message_wamid=decision.message_wamid, outcome=decision.outcome, confidence=decision.confidence,
            reason=decision.reason, applied=why is None, discarded_because=why, at=_now()))
        if why is not None:
            log.info("AI decision for %s discarded: %s", key, why)
            return
        conv.note_command(f"ai:{decision.message_wamid}")
        self._dirty.add(key)
        if decision.outcome == "reply" and decision.reply:
            self._reply(key, conv, _text_message(decision.reply), idempotency_key=f"{decision.message_wamid}:ai",
                        requested_by=f"ai:{decision.provider}")
            return
        if not waiting:  # queued already: the customer waits on, told so once (below)
            cause = "ai_handoff" if decision.outcome == "handoff" else "ai_error"
            await self._hand_off(key, conv, team=None, reason=decision.reason, cause=cause)
        self._acknowledge(key, conv, trigger=decision.message_wamid, replied=False, at=decision.decided_at)

    # --- commands ---------------------------------------------------------------------------

    async def _command(self, command: ConversationCommand) -> None:
        key = command.conversation_key
        conv = self._convs.setdefault(key, Conversation())
        if conv.tenant_id is None:
            conv.tenant_id = command.tenant_id
        if conv.tenant_id != command.tenant_id:
            log.warning("command %s for %s from another tenant ignored", command.action, key)
            return
        if conv.handled_command(command.event_id):
            self._redelivered.append(command.event_id)
            return
        conv.note_command(command.event_id)
        self._dirty.add(key)
        match command.action:
            case "assign" if command.agent_id:
                await self._assign_to(key, conv, command.agent_id, "assign")
            case "transfer":
                if command.agent_id:
                    await self._assign_to(key, conv, command.agent_id, "transfer")
                else:
                    await self._hand_off(key, conv, team=command.team, reason=f"transferred by {command.actor}",
                                         cause="transfer")
            case "resolve":
                await self._resolve(key, conv, cause="resolve", run_rules=True)
            case "reopen" if conv.state in ("bot", "closed"):
                if command.agent_id:
                    await self._assign_to(key, conv, command.agent_id, "reopen")
                else:
                    await self._hand_off(key, conv, team=conv.team, reason=f"reopened by {command.actor}",
                                         cause="reopen")
            case "claim" if command.agent_id:
                if conv.state == "queued":
                    conv.state, conv.assignee_id = "agent", command.agent_id
                    self._changed(key, conv, "claim")
                else:  # taken meanwhile: give the reserved room back
                    await self.assigner.release(command.tenant_id, command.agent_id)
            case _:
                log.info("command %s ignored for %s in state %s", command.action, key, conv.state)

    async def _resolve(self, key: str, conv: Conversation, *, cause: str, run_rules: bool) -> None:
        """Close the conversation (the bot answers the next message); rules with the resolved trigger run."""
        if conv.state == "closed":
            return
        await self._release(key, conv)
        conv.state, conv.team, conv.reason = "closed", None, None
        self._changed(key, conv, cause)
        if run_rules and conv.tenant_id:
            config = self._config(conv.tenant_id)
            ctx = Context(event="resolved", at=_now(), state=conv.state, tags=frozenset(conv.tags),
                          attributes=dict(conv.attributes), business_hours=config.business_hours)
            await self._run_rules(key, conv, evaluate(config.rules, ctx), trigger=f"resolved:{conv.version}")

    async def _send_command(self, command: SendCommand) -> None:
        key = command.conversation_key
        await self._refresh_window(command)  # creates the conversation's state when there is none
        conv = self._convs[key]
        if conv.tenant_id == command.tenant_id:
            if conv.handled_command(command.event_id):
                self._redelivered.append(command.event_id)
                return
            conv.note_command(command.event_id)
            self._dirty.add(key)
        if command.author == "agent" and conv.tenant_id == command.tenant_id:
            agent = command.requested_by.removeprefix("user:")
            if conv.state != "agent" or conv.assignee_id != agent:
                await self._assign_to(key, conv, agent, "agent_reply")
            conv.waiting_answered = True
        self._out.extend(self._send(command, conv))

    async def _refresh_window(self, command: SendCommand) -> None:
        """A closed window in our state may be newer in PostgreSQL (see the module docstring)."""
        key = command.conversation_key
        conv = self._convs.setdefault(key, Conversation())
        if conv.tenant_id == command.tenant_id and conv.window_until > time.time():
            return
        async with self.reads.connect() as conn:
            last = (await conn.execute(LAST_INBOUND, {"key": key, "tenant_id": command.tenant_id})).scalar()
        if last is not None:
            conv.tenant_id = conv.tenant_id or command.tenant_id
            self._customer_wrote(key, conv, last.timestamp())

    # --- sending ----------------------------------------------------------------------------

    def _reply(self, key: str, conv: Conversation, message: dict[str, Any], *, idempotency_key: str,
               requested_by: str) -> None:
        """Send ``message`` to the conversation's customer on behalf of the business."""
        assert conv.tenant_id is not None
        self._replies += 1
        pnid, _, wa_id = key.partition(":")
        command = SendCommand(event_id=idempotency_key, tenant_id=conv.tenant_id, message_id=_message_id(
            idempotency_key), idempotency_key=idempotency_key, phone_number_id=pnid, to=wa_id, message=message,
            requested_by=requested_by, created_at=_now())
        self._out.extend(self._send(command, conv))

    def _send(self, command: SendCommand, conv: Conversation) -> list[Output]:
        window_until = conv.window_until if conv.tenant_id == command.tenant_id else 0.0
        common = {"tenant_id": command.tenant_id, "message_id": command.message_id,
                  "idempotency_key": command.idempotency_key, "phone_number_id": command.phone_number_id,
                  "to": command.to, "message": command.message, "created_at": command.created_at}
        queued = MessageQueued(event_id=f"{command.message_id}:queued", requested_by=command.requested_by, **common)
        request = OutboundRequest(event_id=command.message_id, lane=command.lane, window_until=window_until,
                                  **common)
        if conv.tenant_id == command.tenant_id and command.message.get("type") == "text":
            conv.remember("business", str(command.message.get("text", {}).get("body", "")))
            self._dirty.add(command.conversation_key)
        key = command.conversation_key.encode()
        outputs = [Output(CONVERSATIONS_EVENTS.full_name(self.prefix), key, queued.encode())]
        if request.is_free_form and window_until <= time.time():
            result = local_failure(request, OUTSIDE_SERVICE_WINDOW,
                                   "free-form messages can only be sent within 24 hours of the customer's "
                                   "last message; send an approved template instead")
            outputs.append(Output(OUTBOUND_RESULTS.full_name(self.prefix), key, result.encode()))
            outputs.append(Output(STATUSES.full_name(self.prefix), key, local_failure_status(result).encode()))
        else:
            outputs.append(Output(OUTBOUND_INTERACTIVE.full_name(self.prefix), key, request.encode()))
        return outputs
