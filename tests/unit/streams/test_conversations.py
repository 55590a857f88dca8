"""The conversation processor in process, against a real Redis: window, rules, AI, hand-off, commands.

PostgreSQL is replaced by a stand-in that only answers the window fallback and by the in-memory
durable states (``_durable``); tenant configuration comes from a stand-in cache. Outputs are checked
by topic and content, state by what ``saved()`` wrote.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from agents.assignment import Assigner
from automations.rules import BusinessHours, Rule
from automations.waiting import WaitingReplies
from broker.runtime import Output
from schemas.ai import AiDecision, AiRequest
from schemas.conversation import AiOutcome, ContactChanged, ConversationChanged, ConversationCommand, RuleExecuted
from schemas.events import InboundMessage
from schemas.outbound import MessageQueued, OutboundRequest, OutboundResult, SendCommand
from streams.conversations import ConversationProcessor
from tenants.config import TenantConfig
from tests.unit.streams._durable import MemoryStates

PNID, CUSTOMER = "106540352242922", "16505551234"
KEY = f"{PNID}:{CUSTOMER}"
TEXT = {"type": "text", "text": {"body": "hello"}}
TEMPLATE = {"type": "template", "template": {"name": "hi", "language": {"code": "en_US"}}}


class _Message:
    def __init__(self, value: bytes, topic: str, offset: int = 0) -> None:
        self._value, self._topic, self._offset = value, topic, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class _Result:
    def __init__(self, value: Any) -> None:
        self.value = value

    def scalar(self) -> Any:
        return self.value


class _Connection:
    def __init__(self, last_inbound: datetime | None) -> None:
        self.last_inbound = last_inbound

    async def __aenter__(self) -> _Connection:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def execute(self, _query: Any, _params: Any = None) -> _Result:
        return _Result(self.last_inbound)


class _Engine:
    """PostgreSQL's view of the conversation: when the customer last wrote (or None)."""

    def __init__(self, last_inbound: datetime | None = None) -> None:
        self.last_inbound = last_inbound

    def connect(self) -> _Connection:
        return _Connection(self.last_inbound)

    def execution_options(self, **_options: Any) -> _Engine:
        return self


class _Configs:
    def __init__(self) -> None:
        self.configs: dict[str, TenantConfig] = {}

    async def get_many(self, tenant_ids: Any) -> dict[str, TenantConfig]:
        return {t: self.configs.get(t, TenantConfig(t, 0)) for t in tenant_ids}


@pytest.fixture
def configs() -> _Configs:
    return _Configs()


@pytest.fixture
def processor(redis: aioredis.Redis, configs: _Configs) -> ConversationProcessor:
    return ConversationProcessor(redis, _Engine(), prefix="", configs=configs,  # type: ignore[arg-type]
                                 states=MemoryStates())


def inbound(tenant: str, n: int = 0, *, text: str | None = "hi", at: datetime | None = None, kind: str = "text",
            payload: dict[str, Any] | None = None) -> _Message:
    at = at or datetime.now(UTC)
    event = InboundMessage(event_id=f"in{n}", tenant_id=tenant, phone_number_id=PNID, waba_id="w", received_at=at,
                           wamid=f"wamid.{n}", wa_id=CUSTOMER, type=kind, timestamp=at, text=text,
                           payload=payload or {})
    return _Message(event.encode(), "wa.inbound", n)


def send(tenant: str, message: dict[str, Any], n: int = 1, *, author: str = "api",
         by: str = "api_key:k") -> _Message:
    command = SendCommand(event_id=f"m{n}", tenant_id=tenant, message_id=f"m{n}", idempotency_key=f"{tenant}:m{n}",
                          phone_number_id=PNID, to=CUSTOMER, message=message, requested_by=by,
                          created_at=datetime.now(UTC), author=author)  # type: ignore[arg-type]
    return _Message(command.encode(), "conversations.commands", n)


def command(tenant: str, action: str, **fields: Any) -> _Message:
    cmd = ConversationCommand(event_id=f"c-{uuid.uuid4()}", tenant_id=tenant, conversation_key=KEY,
                              action=action, actor="user:admin", at=datetime.now(UTC), **fields)  # type: ignore[arg-type]
    return _Message(cmd.encode(), "conversations.commands")


def decision(request: AiRequest, *, outcome: str = "reply", reply: str | None = "It ships in 2 days.",
             confidence: float = 0.9, reason: str = "matched shipping") -> _Message:
    made = AiDecision(event_id=f"{request.event_id}:d", tenant_id=request.tenant_id,
                      conversation_key=request.conversation_key, message_wamid=request.message_wamid,
                      version=request.version, outcome=outcome, reply=reply, confidence=confidence,  # type: ignore[arg-type]
                      reason=reason, provider="offline", decided_at=datetime.now(UTC))
    return _Message(made.encode(), "ai.decisions")


def of(outputs: list[Output], topic: str) -> list[bytes]:
    return [o.value for o in outputs if o.topic == topic]


def events(outputs: list[Output], kind: type[Any]) -> list[Any]:
    found = []
    for value in of(outputs, "conversations.events"):
        if orjson.loads(value)["kind"] == kind.model_fields["kind"].default:
            found.append(kind.model_validate_json(value))
    return found


async def run(processor: ConversationProcessor, *messages: _Message) -> list[Output]:
    outputs = await processor.process(list(messages))  # type: ignore[arg-type]
    await processor.saved()
    return outputs


def sent_bodies(outputs: list[Output]) -> list[str]:
    return [OutboundRequest.decode(v).message["text"]["body"] for v in of(outputs, "outbound.interactive")]


# --- window ----------------------------------------------------------------------------------------


async def test_a_reply_inside_the_window_is_queued_and_sent(processor: ConversationProcessor, tenant: str) -> None:
    now = datetime.now(UTC)
    outputs = await run(processor, inbound(tenant, at=now), send(tenant, TEXT))
    assert MessageQueued.decode(of(outputs, "conversations.events")[-1]).message_id == "m1"
    request = OutboundRequest.decode(of(outputs, "outbound.interactive")[0])
    assert request.window_until == pytest.approx(now.timestamp() + 86400)


async def test_free_form_outside_the_window_fails_locally_and_a_template_goes(
        processor: ConversationProcessor, tenant: str) -> None:
    old = datetime.now(UTC) - timedelta(hours=25)
    outputs = await run(processor, inbound(tenant, at=old), send(tenant, TEXT), send(tenant, TEMPLATE, 2))
    result = OutboundResult.decode(of(outputs, "outbound.results")[0])
    assert (result.outcome, result.error_title, result.local) == ("failed", "outside_service_window", True)
    assert "template" in (result.error_details or "")
    assert [OutboundRequest.decode(v).message_id for v in of(outputs, "outbound.interactive")] == ["m2"]
    assert len(of(outputs, "wa.statuses")) == 1


async def test_state_is_written_only_when_saved(processor: ConversationProcessor, redis: aioredis.Redis,
                                                tenant: str) -> None:
    now = datetime.now(UTC)
    await processor.process([inbound(tenant, at=now)])  # type: ignore[list-item]
    assert await redis.get(f"aer:conv:{KEY}") is None
    await processor.saved()
    state = orjson.loads(await redis.get(f"aer:conv:{KEY}") or b"{}")
    assert state["window_until"] == pytest.approx(now.timestamp() + 86400) and state["last_wamid"] == "wamid.0"
    assert float(await redis.get(f"aer:window:{PNID}:{CUSTOMER}") or 0) == pytest.approx(now.timestamp())


async def test_a_window_only_postgres_knows_of_still_counts(redis: aioredis.Redis, configs: _Configs,
                                                            tenant: str) -> None:
    recent = datetime.now(UTC) - timedelta(minutes=5)
    processor = ConversationProcessor(redis, _Engine(recent), prefix="", configs=configs,  # type: ignore[arg-type]
                                      states=MemoryStates())
    outputs = await run(processor, send(tenant, TEXT))
    assert OutboundRequest.decode(of(outputs, "outbound.interactive")[0]).window_until > time.time()


async def test_an_undecodable_record_raises_for_the_runtime_to_set_aside(processor: ConversationProcessor,
                                                                        tenant: str) -> None:
    """The runtime re-runs the batch record by record and dead-letters this one (see test_dead_letters)."""
    with pytest.raises(ValueError, match=r"undecodable record of wa\.inbound"):
        await run(processor, _Message(b"not json", "wa.inbound"), send(tenant, TEMPLATE))
    with pytest.raises(ValueError, match="unknown kind 'campaign_job'"):
        await run(processor, _Message(b'{"kind": "campaign_job"}', "conversations.commands"))
    outputs = await run(processor, send(tenant, TEMPLATE))  # the rest of the batch, alone, goes through
    assert len(of(outputs, "outbound.interactive")) == 1


# --- AI --------------------------------------------------------------------------------------------


async def test_a_message_in_bot_asks_the_ai_and_a_confident_reply_is_sent(
        processor: ConversationProcessor, tenant: str) -> None:
    outputs = await run(processor, inbound(tenant, text="when will it ship?"))
    [raw] = of(outputs, "ai.requests")
    request = AiRequest.decode(raw)
    assert (request.message_wamid, request.text, request.version) == ("wamid.0", "when will it ship?", 1)
    outputs = await run(processor, decision(request))
    assert sent_bodies(outputs) == ["It ships in 2 days."]
    [outcome] = events(outputs, AiOutcome)
    assert outcome.applied and outcome.discarded_because is None
    assert OutboundRequest.decode(of(outputs, "outbound.interactive")[0]).idempotency_key == "wamid.0:ai"
    again = await run(processor, decision(request))  # redelivered: nothing is sent again
    assert of(again, "outbound.interactive") == []
    assert events(again, AiOutcome)[0].discarded_because == "already applied"


async def test_a_decision_for_an_older_message_is_discarded(processor: ConversationProcessor, tenant: str) -> None:
    first = AiRequest.decode(of(await run(processor, inbound(tenant, 0)), "ai.requests")[0])
    await run(processor, inbound(tenant, 1, text="and the price?"))
    outputs = await run(processor, decision(first))
    assert of(outputs, "outbound.interactive") == []
    [outcome] = events(outputs, AiOutcome)
    assert not outcome.applied and outcome.discarded_because == "a newer message arrived"


async def test_a_decision_after_an_agent_replied_is_discarded(
        processor: ConversationProcessor, redis: aioredis.Redis, tenant: str) -> None:
    request = AiRequest.decode(of(await run(processor, inbound(tenant)), "ai.requests")[0])
    taken = await run(processor, send(tenant, TEXT, author="agent", by="user:agent-7"))
    [change] = events(taken, ConversationChanged)
    assert (change.state, change.assignee_id, change.cause) == ("agent", "agent-7", "agent_reply")
    outputs = await run(processor, decision(request))
    assert of(outputs, "outbound.interactive") == []
    assert "a person took over" in (events(outputs, AiOutcome)[0].discarded_because or "")
    assert of(await run(processor, inbound(tenant, 2)), "ai.requests") == []  # the AI stays silent in agent


async def test_low_confidence_hands_off_to_the_least_loaded_online_agent(
        processor: ConversationProcessor, redis: aioredis.Redis, tenant: str) -> None:
    assigner = Assigner(redis)
    for agent, presence in (("busy", "online"), ("free", "online"), ("away", "away")):
        await assigner.configure(tenant, agent, capacity=3, teams=[])
        await assigner.set_presence(tenant, agent, presence, ttl_s=60)
    await assigner.reserve(tenant, "busy")
    request = AiRequest.decode(of(await run(processor, inbound(tenant)), "ai.requests")[0])
    outputs = await run(processor, decision(request, outcome="handoff", reply=None, confidence=0.3,
                                            reason="confidence 0.30 < 0.70: no match"))
    [change] = events(outputs, ConversationChanged)
    assert (change.state, change.assignee_id, change.cause) == ("agent", "free", "ai_handoff")
    assert change.reason == "confidence 0.30 < 0.70: no match"
    assert sent_bodies(outputs) == [WaitingReplies().in_hours_text]  # only the waiting acknowledgement


async def test_nobody_free_queues_then_an_agent_claims(processor: ConversationProcessor, redis: aioredis.Redis,
                                                       tenant: str) -> None:
    request = AiRequest.decode(of(await run(processor, inbound(tenant)), "ai.requests")[0])
    outputs = await run(processor, decision(request, outcome="handoff", reply=None, confidence=0.1, reason="?"))
    assert events(outputs, ConversationChanged)[0].state == "queued"
    assigner = Assigner(redis)
    await assigner.configure(tenant, "ann", capacity=1, teams=[])
    await assigner.set_presence(tenant, "ann", "online", ttl_s=60)
    assert await assigner.claim(tenant, "ann") == KEY
    outputs = await run(processor, command(tenant, "claim", agent_id="ann"))
    change = events(outputs, ConversationChanged)[0]
    assert (change.state, change.assignee_id, change.cause) == ("agent", "ann", "claim")


async def test_resolve_frees_the_agent_for_the_oldest_waiting_conversation(
        processor: ConversationProcessor, redis: aioredis.Redis, tenant: str) -> None:
    assigner = Assigner(redis)
    await assigner.configure(tenant, "ann", capacity=1, teams=[])
    await assigner.set_presence(tenant, "ann", "online", ttl_s=60)
    await run(processor, inbound(tenant), command(tenant, "assign", agent_id="ann"))
    assert await assigner.pick(tenant, "other:conversation") is None  # ann is full: it waits
    outputs = await run(processor, command(tenant, "resolve"))
    assert events(outputs, ConversationChanged)[0].state == "closed"
    [claim] = [ConversationCommand.decode(v) for v in of(outputs, "conversations.commands")]
    assert (claim.action, claim.conversation_key, claim.agent_id) == ("claim", "other:conversation", "ann")
    back = await run(processor, inbound(tenant, 5, text="one more question"))
    assert events(back, ConversationChanged)[0].state == "bot" and len(of(back, "ai.requests")) == 1


async def test_the_ai_off_or_an_unreadable_message_goes_to_a_person(
        processor: ConversationProcessor, configs: _Configs, tenant: str) -> None:
    outputs = await run(processor, inbound(tenant, kind="image", text=None))
    change = events(outputs, ConversationChanged)[0]
    assert (change.state, change.reason) == ("queued", "a image message needs a person")
    other = f"{tenant}-off"
    configs.configs[other] = TenantConfig(other, 1, ai_provider="off")
    outputs = await run(processor, inbound(other, 9))
    assert of(outputs, "ai.requests") == [] and events(outputs, ConversationChanged)[0].cause == "no_ai"


# --- automations ----------------------------------------------------------------------------------


def rules(*specs: dict[str, Any]) -> tuple[Rule, ...]:
    return tuple(Rule.model_validate({"id": f"r{i}", "position": i, **spec}) for i, spec in enumerate(specs))


async def test_stop_opts_out_confirms_and_skips_rules_and_ai(processor: ConversationProcessor, configs: _Configs,
                                                             tenant: str) -> None:
    configs.configs[tenant] = TenantConfig(tenant, 1, rules({"name": "all", "trigger": {"type": "message_received"},
                                                             "actions": [{"type": "add_tag", "tag": "x"}]}))
    outputs = await run(processor, inbound(tenant, text="STOP"))
    [contact] = events(outputs, ContactChanged)
    assert contact.opted_out and contact.tags == []
    assert "no longer receive" in sent_bodies(outputs)[0]
    assert [e.rule_id for e in events(outputs, RuleExecuted)] == ["builtin:opt_out"]
    assert of(outputs, "ai.requests") == []
    outputs = await run(processor, inbound(tenant, 2, text="start"))
    assert not events(outputs, ContactChanged)[0].opted_out


async def test_a_keyword_rule_replies_tags_and_the_ai_is_not_asked(
        processor: ConversationProcessor, configs: _Configs, tenant: str) -> None:
    configs.configs[tenant] = TenantConfig(tenant, 1, rules(
        {"name": "price", "trigger": {"type": "keyword", "keywords": ["price"]},
         "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "From $10."}}},
                     {"type": "add_tag", "tag": "pricing"}, {"type": "set_attribute", "key": "asked", "value": "yes"}]},
        {"name": "never", "trigger": {"type": "keyword", "keywords": ["price"]},
         "actions": [{"type": "add_tag", "tag": "second"}], "enabled": False}))
    outputs = await run(processor, inbound(tenant, text="what's the price?"))
    assert sent_bodies(outputs) == ["From $10."]
    assert events(outputs, ContactChanged)[-1].tags == ["pricing"]
    assert events(outputs, ContactChanged)[-1].attributes == {"asked": "yes"}
    assert [e.rule_name for e in events(outputs, RuleExecuted)] == ["price"]
    assert of(outputs, "ai.requests") == []


async def test_payload_and_business_hours_rules(processor: ConversationProcessor, configs: _Configs,
                                                tenant: str) -> None:
    never_open = BusinessHours(timezone="Asia/Kolkata", hours={"sun": [("00:00", "00:01")]})
    configs.configs[tenant] = TenantConfig(tenant, 1, rules(
        {"name": "track", "trigger": {"type": "payload", "payloads": ["TRACK"]}, "stop": True,
         "actions": [{"type": "handoff", "team": "orders", "reason": "tracking"}]},
        {"name": "after hours", "trigger": {"type": "outside_business_hours"},
         "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "We're closed."}}}]}),
        business_hours=never_open)
    button = {"type": "button", "button": {"payload": "TRACK", "text": "Track my order"}}
    outputs = await run(processor, inbound(tenant, text="Track my order", kind="button", payload=button))
    change = events(outputs, ConversationChanged)[0]
    assert (change.state, change.team, change.reason) == ("queued", "orders", "tracking")
    [acknowledged] = sent_bodies(outputs)  # the payload rule stopped the rest: only the waiting acknowledgement
    assert acknowledged.startswith("We're closed now; we reply from ") and acknowledged.endswith(" IST.")
    other = f"{tenant}-2"
    configs.configs[other] = TenantConfig(other, 1, configs.configs[tenant].rules, business_hours=never_open)
    outputs = await run(processor, inbound(other, 3, text="hello?"))
    assert sent_bodies(outputs) == ["We're closed."] and of(outputs, "ai.requests") == []
    open_now = BusinessHours(timezone="UTC", hours={d: [("00:00", "00:00")] for d in  # type: ignore[misc]
                                                    ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    third = f"{tenant}-3"
    configs.configs[third] = TenantConfig(third, 1, configs.configs[tenant].rules, business_hours=open_now)
    outputs = await run(processor, inbound(third, 4, text="hello?"))
    assert sent_bodies(outputs) == [] and len(of(outputs, "ai.requests")) == 1


async def test_a_resolved_rule_runs_on_resolve(processor: ConversationProcessor, configs: _Configs,
                                               tenant: str) -> None:
    configs.configs[tenant] = TenantConfig(tenant, 1, rules(
        {"name": "thanks", "trigger": {"type": "conversation_resolved"},
         "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "Thanks for writing!"}}}]}))
    await run(processor, inbound(tenant), command(tenant, "assign", agent_id="ann"))
    outputs = await run(processor, command(tenant, "resolve"))
    assert sent_bodies(outputs) == ["Thanks for writing!"]
    assert events(outputs, RuleExecuted)[0].trigger_event.startswith("resolved:")


async def test_transfer_to_a_team_and_to_an_agent(processor: ConversationProcessor, redis: aioredis.Redis,
                                                  tenant: str) -> None:
    assigner = Assigner(redis)
    for agent, teams in (("ann", ["sales"]), ("sam", ["support"])):
        await assigner.configure(tenant, agent, capacity=2, teams=teams)
        await assigner.set_presence(tenant, agent, "online", ttl_s=60)
    await run(processor, inbound(tenant), command(tenant, "assign", agent_id="ann"))
    assert await assigner.open_count(tenant, "ann") == 1
    outputs = await run(processor, command(tenant, "transfer", team="support"))
    change = events(outputs, ConversationChanged)[0]
    assert (change.state, change.assignee_id, change.team, change.cause) == ("agent", "sam", "support", "transfer")
    assert (await assigner.open_count(tenant, "ann"), await assigner.open_count(tenant, "sam")) == (0, 1)
    outputs = await run(processor, command(tenant, "transfer", agent_id="ann"))
    change = events(outputs, ConversationChanged)[0]
    assert (change.state, change.assignee_id) == ("agent", "ann")
    assert (await assigner.open_count(tenant, "ann"), await assigner.open_count(tenant, "sam")) == (1, 0)


async def test_reopen_hands_a_resolved_conversation_back_to_a_person(
        processor: ConversationProcessor, redis: aioredis.Redis, tenant: str) -> None:
    assigner = Assigner(redis)
    await assigner.configure(tenant, "ann", capacity=2, teams=[])
    await assigner.set_presence(tenant, "ann", "online", ttl_s=60)
    await run(processor, inbound(tenant), command(tenant, "assign", agent_id="ann"), command(tenant, "resolve"))
    assert await assigner.open_count(tenant, "ann") == 0
    outputs = await run(processor, command(tenant, "reopen", agent_id="ann"))
    change = events(outputs, ConversationChanged)[0]
    assert (change.state, change.assignee_id, change.cause) == ("agent", "ann", "reopen")
    assert await assigner.open_count(tenant, "ann") == 1
    ignored = await run(processor, command(tenant, "reopen"))  # already with a person: nothing to reopen
    assert events(ignored, ConversationChanged) == []


async def test_a_command_from_another_tenant_is_ignored(processor: ConversationProcessor, tenant: str) -> None:
    await run(processor, inbound(tenant))
    outputs = await run(processor, command(f"{tenant}-intruder", "resolve"))
    assert outputs == []
