"""Losing Redis loses nothing and repeats nothing: the conversation processor's durable state.

Redis is real (emptied to stand for a restart without its data); PostgreSQL's ``conversation_state`` is
the in-memory ``MemoryStates`` (same JSON, same "never an older version" rule). The statement itself
runs against PostgreSQL in tests/integration/test_redis_loss.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from agents.assignment import Assigner
from db.redis_client import connect_redis
from schemas.ai import AiRequest
from schemas.conversation import AiOutcome, ConversationChanged
from schemas.events import InboundMessage
from stack.services import start_redis
from streams.conversation_state import RECENT_COMMANDS, RECENT_INBOUND, Conversation
from streams.conversation_store import ConversationStore
from streams.conversations import ConversationProcessor
from tests.unit.streams._durable import MemoryStates
from tests.unit.streams.test_conversations import (
    KEY,
    PNID,
    TEXT,
    _Configs,
    _Engine,
    _Message,
    command,
    decision,
    events,
    inbound,
    of,
    run,
    send,
)


@pytest.fixture
def states() -> MemoryStates:
    return MemoryStates()


@pytest.fixture
def processor(redis: aioredis.Redis, states: MemoryStates) -> ConversationProcessor:
    return ConversationProcessor(redis, _Engine(), prefix="", configs=_Configs(),  # type: ignore[arg-type]
                                 states=states)


async def lose(redis: aioredis.Redis) -> None:
    """Redis restarted without its data."""
    await redis.flushdb()


def ai_requests(outputs: list[Any]) -> list[AiRequest]:
    return [AiRequest.decode(v) for v in of(outputs, "ai.requests")]


def inbound_from(tenant: str, wa_id: str, n: int, *, kind: str = "text") -> _Message:
    at = datetime.now(UTC)
    event = InboundMessage(event_id=f"in-{wa_id}-{n}", tenant_id=tenant, phone_number_id=PNID, waba_id="w",
                           received_at=at, wamid=f"wamid.{wa_id}.{n}", wa_id=wa_id, type=kind, timestamp=at,
                           text="hi" if kind == "text" else None, payload={})
    return _Message(event.encode(), "wa.inbound", n)


# --- the state itself -------------------------------------------------------------------------------


def test_recent_inbound_is_bounded_and_what_fell_off_is_still_recognised() -> None:
    conv = Conversation()
    for n in range(RECENT_INBOUND + 6):
        conv.note_inbound(f"w{n}", float(n + 1))
    assert len(conv.recent_inbound) == RECENT_INBOUND and conv.last_wamid == f"w{RECENT_INBOUND + 5}"
    assert conv.inbound_floor == 6.0  # w5, sent at 6, was the newest to fall off
    assert conv.handled_inbound("w69", 70.0) and conv.handled_inbound("w6", 7.0)
    assert conv.handled_inbound("w0", 1.0)  # fell off the list, but older than the floor
    assert not conv.handled_inbound("new", 6.0) and not conv.handled_inbound("new", 100.0)


def test_the_state_survives_json_and_its_bounds() -> None:
    conv = Conversation(tenant_id="t", state="queued", version=7, queued_at=12.5)
    conv.note_inbound("w1", 10.0)
    for n in range(RECENT_COMMANDS + 3):
        conv.note_command(f"c{n}")
    assert len(conv.recent_commands) == RECENT_COMMANDS and not conv.handled_command("c0")
    assert conv.handled_command(f"c{RECENT_COMMANDS + 2}")
    assert Conversation.from_dict(orjson.loads(orjson.dumps(conv.to_dict()))) == conv
    assert Conversation.from_dict({"version": 3, "unknown": 1}).version == 3  # states written before a field existed


def test_a_successor_keeps_only_the_version() -> None:
    conv = Conversation(tenant_id="t", state="agent", assignee_id="ann", version=9, last_wamid="w")
    assert conv.successor() == Conversation(version=9)


# --- the processor ----------------------------------------------------------------------------------


async def test_a_redelivered_answered_message_is_not_answered_again_after_redis_lost(
        processor: ConversationProcessor, redis: aioredis.Redis, states: MemoryStates, tenant: str) -> None:
    [request] = ai_requests(await run(processor, inbound(tenant, 0, text="when will it ship?")))
    answered = await run(processor, decision(request))
    assert len(of(answered, "outbound.interactive")) == 1
    await lose(redis)
    again = await run(processor, inbound(tenant, 0, text="when will it ship?"))
    assert again == [] and processor.redelivered == 1
    assert states.loads[-1] == [KEY] and await redis.get(f"aer:conv:{KEY}") is not None  # put back in Redis
    late = await run(processor, decision(request))  # the AI's answer redelivered too
    assert of(late, "outbound.interactive") == [] and events(late, AiOutcome)[0].discarded_because == "already applied"
    [following] = ai_requests(await run(processor, inbound(tenant, 1, text="and the price?")))
    assert following.version == request.version + 1  # the version goes on from where it was


async def test_a_queued_conversation_stays_with_people_and_keeps_its_place(
        processor: ConversationProcessor, redis: aioredis.Redis, tenant: str) -> None:
    assigner = Assigner(redis)
    [queued] = events(await run(processor, inbound(tenant, 0, kind="image", text=None)), ConversationChanged)
    assert queued.state == "queued" and await assigner.queued(tenant) == [KEY]
    await lose(redis)
    outputs = await run(processor, inbound(tenant, 1, text="how long does shipping take?"))
    # The AI may still answer while it waits (the tenant's default), but nothing moves it out of the queue.
    assert len(ai_requests(outputs)) == 1 and events(outputs, ConversationChanged) == []
    assert await assigner.queued(tenant) == [KEY]  # back in the queue it waited in
    await assigner.configure(tenant, "ann", capacity=1, teams=[])
    await assigner.set_presence(tenant, "ann", "online", ttl_s=60)
    assert await assigner.claim(tenant, "ann") == KEY
    [claimed] = events(await run(processor, command(tenant, "claim", agent_id="ann")), ConversationChanged)
    assert (claimed.state, claimed.assignee_id) == ("agent", "ann") and claimed.version > queued.version + 1
    assert claimed.event_id != queued.event_id


async def test_versions_and_event_ids_never_repeat_across_losses_and_a_new_tenant(
        processor: ConversationProcessor, redis: aioredis.Redis, tenant: str) -> None:
    changes: list[ConversationChanged] = []
    steps = [inbound(tenant, 0, kind="image", text=None), command(tenant, "assign", agent_id="ann"),
             inbound(tenant, 1), command(tenant, "resolve"), inbound(tenant, 2)]
    for step in steps:
        changes += events(await run(processor, step), ConversationChanged)
        await lose(redis)
    moved = ai_requests(await run(processor, inbound(f"{tenant}-new", 3)))  # the number moved to another tenant
    assert [c.state for c in changes] == ["queued", "agent", "closed", "bot"]
    assert len({c.event_id for c in changes}) == len(changes)
    assert [c.version for c in changes] == sorted({c.version for c in changes})
    assert moved[0].version > changes[-1].version and moved[0].tenant_id == f"{tenant}-new"


async def test_redelivered_commands_and_sends_are_applied_once(
        processor: ConversationProcessor, redis: aioredis.Redis, tenant: str) -> None:
    assign, reply = command(tenant, "assign", agent_id="ann"), send(tenant, TEXT, author="agent", by="user:ann")
    await run(processor, inbound(tenant, 0))
    assert len(events(await run(processor, assign), ConversationChanged)) == 1
    assert len(of(await run(processor, reply), "outbound.interactive")) == 1
    await lose(redis)
    assert await run(processor, assign, reply) == [] and processor.redelivered == 2
    assert await Assigner(redis).open_count(tenant, "ann") == 0  # nothing was counted again


async def test_a_restarted_processor_puts_back_waiting_conversations_nobody_writes_to(
        processor: ConversationProcessor, redis: aioredis.Redis, states: MemoryStates, tenant: str) -> None:
    assigner = Assigner(redis)
    await run(processor, inbound(tenant, 0, kind="image", text=None))
    assert await assigner.queued(tenant) == [KEY]
    await lose(redis)
    restarted = ConversationProcessor(redis, _Engine(), prefix="", configs=_Configs(),  # type: ignore[arg-type]
                                      states=states)
    await run(restarted, inbound_from(tenant, "999", 0))  # someone else writes; the waiting customer does not
    assert await assigner.queued(tenant) == [KEY]
    await assigner.configure(tenant, "ann", capacity=1, teams=[])
    await assigner.set_presence(tenant, "ann", "online", ttl_s=60)
    assert await assigner.claim(tenant, "ann") == KEY


async def test_a_rebuild_of_the_queues_given_up_half_way_goes_on_where_it_stopped(
        processor: ConversationProcessor, redis: aioredis.Redis, states: MemoryStates, tenant: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    customers = ["301", "302", "303"]
    for n, wa_id in enumerate(customers):  # three customers waiting for a person
        await run(processor, inbound_from(tenant, wa_id, n, kind="image"))
    keys = [f"{PNID}:{wa_id}" for wa_id in customers]
    assert await Assigner(redis).queued(tenant) == keys
    await lose(redis)
    restarted = ConversationProcessor(redis, _Engine(), prefix="", configs=_Configs(),  # type: ignore[arg-type]
                                      states=states)
    reads, requeued = [], []
    waiting, requeue = states.waiting, restarted.assigner.requeue

    async def counted_waiting(limit: int) -> list[tuple[str, Conversation]]:
        reads.append(limit)
        return await waiting(limit)

    async def failing_once(tenant_id: str, key: str, team: str | None, since: float) -> None:
        requeued.append(key)
        if len(requeued) == 2:  # the batch fails on the second: Redis went away, or the runtime's deadline
            raise RedisConnectionError("gone")
        await requeue(tenant_id, key, team, since)

    monkeypatch.setattr(states, "waiting", counted_waiting)
    monkeypatch.setattr(restarted.assigner, "requeue", failing_once)
    with pytest.raises(RedisConnectionError):
        await run(restarted, inbound_from(tenant, "999", 0))
    await run(restarted, inbound_from(tenant, "999", 0))  # the runtime's retry of the batch

    assert requeued == [keys[0], keys[1], keys[1], keys[2]]  # the first not again, the second retried
    assert len(reads) == 1  # PostgreSQL read once
    assert await Assigner(redis).queued(tenant) == keys


async def test_one_durable_read_per_batch_and_only_for_what_redis_lacks(
        processor: ConversationProcessor, redis: aioredis.Redis, states: MemoryStates, tenant: str) -> None:
    await run(processor, inbound_from(tenant, "111", 0), inbound_from(tenant, "222", 0))
    assert states.loads == [[f"{PNID}:111", f"{PNID}:222"]]
    await run(processor, inbound_from(tenant, "111", 1), inbound_from(tenant, "222", 1))
    assert len(states.loads) == 1  # both in Redis: PostgreSQL is not asked
    await redis.delete(f"aer:conv:{PNID}:222")
    await run(processor, inbound_from(tenant, "111", 2), inbound_from(tenant, "222", 2))
    assert states.loads[-1] == [f"{PNID}:222"] and states.get(f"{PNID}:222").version == 3


async def test_a_state_redis_kept_from_before_a_restart_is_checked_against_postgres(
        tmp_path: Path, states: MemoryStates, tenant: str) -> None:
    service = start_redis(tmp_path / "log", tmp_path / "data")
    redis = connect_redis(service.url)
    try:
        processor = ConversationProcessor(redis, _Engine(), prefix="", configs=_Configs(),  # type: ignore[arg-type]
                                          states=states)
        [first] = ai_requests(await run(processor, inbound(tenant, 0, text="when will it ship?")))
        snapshot = await redis.get(f"aer:conv:{KEY}")
        assert len(of(await run(processor, decision(first)), "outbound.interactive")) == 1
        [second] = ai_requests(await run(processor, inbound(tenant, 1)))
        service.stop()
        service = start_redis(tmp_path / "log", tmp_path / "data", port=service.port)
        await redis.set(f"aer:conv:{KEY}", snapshot or b"")  # it came back without its last writes
        late = await run(processor, decision(first), inbound(tenant, 1))  # both redelivered
        assert of(late, "outbound.interactive") == [] and ai_requests(late) == [] and processor.redelivered == 1
        [third] = ai_requests(await run(processor, inbound(tenant, 2)))
        assert (second.version, third.version) == (2, 3)  # from PostgreSQL's state, not the older one
        assert states.loads[-1] == [KEY]  # checked once; the state written back is trusted again
        await run(processor, inbound(tenant, 3))
        assert states.loads[-1] == [KEY] and len(states.loads) == 2
    finally:
        await redis.aclose()
        service.stop()


# --- the owned states kept in memory ----------------------------------------------------------------


async def _tamper(redis: aioredis.Redis, **fields: Any) -> None:
    """Overwrite fields of the state Redis holds (another writer would, after a handover)."""
    state = orjson.loads(await redis.get(f"aer:conv:{KEY}") or b"{}")
    await redis.set(f"aer:conv:{KEY}", orjson.dumps({**state, **fields}))


async def test_an_owned_state_comes_from_memory_until_its_partitions_are_revoked(
        processor: ConversationProcessor, redis: aioredis.Redis, states: MemoryStates, tenant: str) -> None:
    [first] = ai_requests(await run(processor, inbound(tenant, 0)))
    await _tamper(redis, version=40)  # memory is this worker's own last save: Redis is not read while it owns it
    [second] = ai_requests(await run(processor, inbound(tenant, 1)))
    assert (first.version, second.version) == (1, 2) and len(states.loads) == 1
    await _tamper(redis, version=40)  # the next owner wrote meanwhile
    processor.revoked()  # the runtime's consumer gave the partitions up, then got them back
    [third] = ai_requests(await run(processor, inbound(tenant, 2)))
    assert third.version == 41 and states.get(KEY).version == 41  # read afresh from Redis


async def test_a_state_postgres_refused_is_not_kept_in_memory(
        processor: ConversationProcessor, redis: aioredis.Redis, states: MemoryStates, tenant: str) -> None:
    await run(processor, inbound(tenant, 0))
    newer = states.get(KEY)
    newer.version = 9  # another writer (a rebalance) saved a newer version meanwhile
    states.rows[KEY] = (9, orjson.dumps(newer.to_dict()))
    await run(processor, inbound(tenant, 1))  # version 2 refused: Redis's copy deleted, memory forgets it
    assert await redis.get(f"aer:conv:{KEY}") is None
    [request] = ai_requests(await run(processor, inbound(tenant, 2)))
    assert request.version == 10 and states.loads[-1] == [KEY]


async def test_memory_is_bounded_and_a_batch_that_failed_reads_its_states_again(
        redis: aioredis.Redis, states: MemoryStates, tenant: str) -> None:
    processor = ConversationProcessor(redis, _Engine(), prefix="", configs=_Configs(),  # type: ignore[arg-type]
                                      states=states)
    processor.store = ConversationStore(redis, states, owned_max=1)
    await run(processor, inbound_from(tenant, "111", 0), inbound_from(tenant, "222", 0))
    [owned] = processor.store._owned
    wa_id = owned.partition(":")[2]
    await processor.process([inbound_from(tenant, wa_id, 1)])  # type: ignore[list-item]
    assert processor.store._owned == {}  # taken for the batch, not saved (its outputs were not acknowledged)
    [again] = ai_requests(await run(processor, inbound_from(tenant, wa_id, 1)))  # run again from Redis's state
    assert again.version == 2 and list(processor.store._owned) == [owned]
