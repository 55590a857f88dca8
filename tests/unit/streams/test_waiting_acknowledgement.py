"""The conversation processor tells a waiting customer once per episode; the AI may answer while queued."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from agents.assignment import Assigner
from automations.rules import BusinessHours
from automations.waiting import AUTHOR, WaitingReplies
from broker.runtime import Output
from schemas.ai import AiRequest
from schemas.conversation import AiOutcome, ConversationChanged
from schemas.outbound import MessageQueued
from streams.conversation_state import Conversation
from streams.conversations import ConversationProcessor
from tenants.config import TenantConfig
from tests.unit.streams._durable import MemoryStates
from tests.unit.streams.test_conversations import (
    _Configs,
    _Engine,
    command,
    decision,
    events,
    inbound,
    of,
    rules,
    run,
    send,
    sent_bodies,
)

ACK = WaitingReplies().in_hours_text
TEXT = {"type": "text", "text": {"body": "Hi, Ann here."}}


@pytest.fixture
def configs() -> _Configs:
    return _Configs()


@pytest.fixture
def processor(redis: aioredis.Redis, configs: _Configs) -> ConversationProcessor:
    return ConversationProcessor(redis, _Engine(), prefix="", configs=configs,  # type: ignore[arg-type]
                                 states=MemoryStates())


def asked(outputs: list[Output]) -> AiRequest:
    [request] = of(outputs, "ai.requests")
    return AiRequest.decode(request)


async def handed_over(processor: ConversationProcessor, tenant: str, n: int = 0) -> list[Output]:
    request = asked(await run(processor, inbound(tenant, n, text="where is my parcel?")))
    return await run(processor, decision(request, outcome="handoff", reply=None, confidence=0.2, reason="no match"))


async def test_a_hand_off_to_nobody_acknowledges_once_per_episode(processor: ConversationProcessor,
                                                                  tenant: str) -> None:
    outputs = await handed_over(processor, tenant)
    assert events(outputs, ConversationChanged)[0].state == "queued"
    assert sent_bodies(outputs) == [ACK]
    [queued] = [MessageQueued.decode(v) for v in of(outputs, "conversations.events") if b'"message_queued"' in v]
    assert queued.requested_by == AUTHOR and queued.idempotency_key == "wamid.0:waiting_ack"
    # The next message of the same episode: the AI may answer, but no second acknowledgement.
    request = asked(await run(processor, inbound(tenant, 1, text="still there?")))
    outputs = await run(processor, decision(request, outcome="handoff", reply=None, confidence=0.1, reason="no"))
    assert sent_bodies(outputs) == [] and events(outputs, ConversationChanged) == []
    assert events(outputs, AiOutcome)[0].applied


async def test_a_new_episode_after_resolve_is_acknowledged_again(processor: ConversationProcessor,
                                                                tenant: str) -> None:
    await handed_over(processor, tenant)
    await run(processor, command(tenant, "resolve"))
    assert sent_bodies(await handed_over(processor, tenant, 5)) == [ACK]


async def test_redelivered_decision_sends_no_second_acknowledgement(processor: ConversationProcessor,
                                                                   tenant: str) -> None:
    request = asked(await run(processor, inbound(tenant, text="where is my parcel?")))
    handoff = decision(request, outcome="handoff", reply=None, confidence=0.2, reason="no match")
    assert sent_bodies(await run(processor, handoff)) == [ACK]
    again = await run(processor, handoff)
    assert sent_bodies(again) == [] and events(again, AiOutcome)[0].discarded_because is not None


async def test_out_of_hours_while_queued_names_the_next_opening(processor: ConversationProcessor,
                                                               configs: _Configs, tenant: str) -> None:
    never = BusinessHours(timezone="UTC", hours={"sun": [("00:00", "00:01")]})
    configs.configs[tenant] = TenantConfig(tenant, 1, business_hours=never)
    [text] = sent_bodies(await handed_over(processor, tenant))
    assert text.startswith("We're closed now; we reply from ") and text.endswith(" at 00:00 UTC.")


async def test_given_to_an_online_agent_the_in_hours_text_goes_whatever_the_hours(
        processor: ConversationProcessor, configs: _Configs, redis: aioredis.Redis, tenant: str) -> None:
    never = BusinessHours(timezone="UTC", hours={"sun": [("00:00", "00:01")]})
    configs.configs[tenant] = TenantConfig(tenant, 1, business_hours=never)
    assigner = Assigner(redis)
    await assigner.configure(tenant, "ann", capacity=2, teams=[])
    await assigner.set_presence(tenant, "ann", "online", ttl_s=60)
    outputs = await handed_over(processor, tenant)
    assert events(outputs, ConversationChanged)[0].state == "agent" and sent_bodies(outputs) == [ACK]


async def test_acknowledgement_off_sends_nothing(processor: ConversationProcessor, configs: _Configs,
                                                tenant: str) -> None:
    configs.configs[tenant] = TenantConfig(tenant, 1, waiting=WaitingReplies(acknowledge=False))
    assert sent_bodies(await handed_over(processor, tenant)) == []


async def test_the_ai_answers_a_queued_conversation_which_stays_queued(processor: ConversationProcessor,
                                                                      redis: aioredis.Redis, tenant: str) -> None:
    await handed_over(processor, tenant)
    request = asked(await run(processor, inbound(tenant, 1, text="how long does shipping take?")))
    outputs = await run(processor, decision(request))
    assert sent_bodies(outputs) == ["It ships in 2 days."] and events(outputs, ConversationChanged) == []
    assert await Assigner(redis).queued(tenant) != []
    again = await run(processor, decision(request))  # redelivered: never answered twice
    assert sent_bodies(again) == [] and events(again, AiOutcome)[0].discarded_because == "already applied"


async def test_ai_while_waiting_off_asks_nothing(processor: ConversationProcessor, configs: _Configs,
                                                tenant: str) -> None:
    configs.configs[tenant] = TenantConfig(tenant, 1, waiting=WaitingReplies(ai_answers_while_waiting=False))
    await handed_over(processor, tenant)
    outputs = await run(processor, inbound(tenant, 1, text="how long does shipping take?"))
    assert of(outputs, "ai.requests") == [] and sent_bodies(outputs) == []


async def test_once_an_agent_holds_it_the_ai_is_silent_and_late_answers_are_discarded(
        processor: ConversationProcessor, tenant: str) -> None:
    await handed_over(processor, tenant)
    request = asked(await run(processor, inbound(tenant, 1, text="how long does shipping take?")))
    await run(processor, command(tenant, "assign", agent_id="ann"))
    outputs = await run(processor, decision(request))
    assert sent_bodies(outputs) == []
    assert events(outputs, AiOutcome)[0].discarded_because == "the conversation is agent (a person took over)"
    outputs = await run(processor, inbound(tenant, 2, text="and returns?"))
    assert of(outputs, "ai.requests") == [] and sent_bodies(outputs) == []


async def test_an_agent_reply_answers_the_episode(processor: ConversationProcessor, tenant: str) -> None:
    await run(processor, inbound(tenant, 0, text="hi"), command(tenant, "assign", agent_id="ann"),
              send(tenant, TEXT, author="agent", by="user:ann"))
    assert sent_bodies(await run(processor, inbound(tenant, 1, text="thanks, one more thing"))) == []


async def test_assigned_but_not_answered_is_acknowledged_when_the_customer_writes(
        processor: ConversationProcessor, tenant: str) -> None:
    await run(processor, inbound(tenant, 0, text="hi"), command(tenant, "assign", agent_id="ann"))
    assert sent_bodies(await run(processor, inbound(tenant, 1, text="hello?"))) == [ACK]
    assert sent_bodies(await run(processor, inbound(tenant, 2, text="hello??"))) == []


async def test_a_rule_that_replies_and_hands_over_is_not_acknowledged_again(
        processor: ConversationProcessor, configs: _Configs, tenant: str) -> None:
    configs.configs[tenant] = TenantConfig(tenant, 1, rules(
        {"name": "human", "trigger": {"type": "keyword", "keywords": ["human"]}, "stop": True,
         "actions": [{"type": "reply", "message": {"type": "text", "text": {"body": "Getting someone."}}},
                     {"type": "handoff", "reason": "asked for a human"}]}))
    outputs = await run(processor, inbound(tenant, 0, text="human"))
    assert events(outputs, ConversationChanged)[0].state == "queued"
    assert sent_bodies(outputs) == ["Getting someone."]
    assert sent_bodies(await run(processor, inbound(tenant, 1, text="hello?"))) == []


def test_a_state_saved_before_acknowledgements_existed_is_not_acknowledged_mid_episode() -> None:
    old = Conversation(tenant_id="t", state="agent", assignee_id="ann").to_dict()
    del old["waiting_answered"]
    assert Conversation.from_dict(old).waiting_answered
    assert not Conversation.from_dict(Conversation(tenant_id="t").to_dict()).waiting_answered
