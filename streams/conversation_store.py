"""Where the conversation processor keeps each conversation's state: Redis first, PostgreSQL always.

Redis is fast and shared but may lose its data (a restart without it) or come back older (an
append-only file that misses its last second, a snapshot, a promoted replica). PostgreSQL's
``conversation_state`` is the durable copy: every batch's states are written there first (one upsert
that never replaces a newer version), then to Redis, each tagged with the run id of the Redis server
it was written to. Loading a batch asks Redis for the states and its run id in one round trip; a state
Redis does not have, or wrote in another run, is read from PostgreSQL (one query for the batch) and the
newer of the two (version, then saves) is used and written back to Redis with the batch.

The states of the conversations this worker owns (it holds their partitions) are also kept in memory
after a batch saved them (bounded, least recently used dropped): the next batch takes them from there and
asks Redis only whether it still holds them (one ``EXISTS`` in the batch's round trip). Memory is
forgotten when partitions are revoked or lost, when Redis lacks one of them or restarted, and for a
state PostgreSQL refused: Redis and PostgreSQL stay the source of truth for the next owner. A state is
serialised once per save, the same bytes going to PostgreSQL and Redis.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Mapping
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from config import redis_keys
from db.raw_pool import raw_pool
from db.redis_wire import Command, redis_wire
from schemas.outbound import SERVICE_WINDOW_S
from streams.conversation_state import Conversation

log = logging.getLogger(__name__)

STATE_TTL_S = 90 * 24 * 3600  # in Redis; PostgreSQL keeps it
OWNED_MAX = 10_000  # owned conversations' states kept in memory between batches


class DurableStates(Protocol):
    """Where conversation states outlive Redis."""

    async def load(self, keys: Collection[str]) -> dict[str, Conversation]:
        """The stored states of those of ``keys`` that have one."""

    async def save(self, states: Mapping[str, Conversation], values: Mapping[str, bytes]) -> set[str]:
        """Store ``states`` (``values``: each one ``encoded``) unless a newer version is stored; returns the keys
        that were not stored."""

    async def waiting(self, limit: int) -> list[tuple[str, Conversation]]:
        """Up to ``limit`` conversations waiting for a person, oldest first."""


# Bound arrays, so a batch's states go in one statement (prepared once per connection); run on the raw pool.
LOAD_STATES = ("SELECT conversation_key, version, state::text FROM conversation_state "
               "WHERE conversation_key = ANY($1::text[])")
WAITING_STATES = ("SELECT conversation_key, state::text FROM conversation_state WHERE state->>'state' = 'queued' "
                  "ORDER BY (state->>'queued_at')::float8, conversation_key LIMIT $1")
SAVE_STATES = (
    "INSERT INTO conversation_state (conversation_key, tenant_id, version, state) "
    "SELECT r.key, r.tenant_id::uuid, r.version, r.state::jsonb "
    "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) "
    "WITH ORDINALITY AS r(key, tenant_id, version, state, n) ORDER BY r.n "
    "ON CONFLICT (conversation_key) DO UPDATE SET tenant_id = excluded.tenant_id, version = excluded.version, "
    "state = excluded.state, updated_at = now() WHERE conversation_state.version <= excluded.version "
    "RETURNING conversation_key")


def encoded(conv: Conversation) -> bytes:
    """The stored form of a state (PostgreSQL's ``state`` and Redis's value alike)."""
    return orjson.dumps(conv.to_dict())


def _decoded(version: int, state: str) -> Conversation:
    conv = Conversation.from_dict(orjson.loads(state))
    conv.version = version
    return conv


class PostgresStates:
    """``DurableStates`` in PostgreSQL's ``conversation_state``: one statement per batch each way, each on its own
    (autocommit) on the engine's raw pool (``db.raw_pool``: a third of SQLAlchemy's CPU a statement).

    Rows are found by conversation key alone: the processor, which owns every conversation, checks the
    tenant of each record against the state's (a number that moved tenant starts afresh, version kept).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.pool = raw_pool(engine)

    async def load(self, keys: Collection[str]) -> dict[str, Conversation]:
        if not keys:
            return {}
        rows = await self.pool.fetch(LOAD_STATES, sorted(keys))
        return {key: _decoded(version, state) for key, version, state in rows}

    async def waiting(self, limit: int) -> list[tuple[str, Conversation]]:
        return [(key, Conversation.from_dict(orjson.loads(state)))
                for key, state in await self.pool.fetch(WAITING_STATES, limit)]

    async def save(self, states: Mapping[str, Conversation], values: Mapping[str, bytes]) -> set[str]:
        if not states:
            return set()
        ordered = sorted(states.items())  # rows locked in key order: two writers never deadlock
        written = await self.pool.fetch(SAVE_STATES, [k for k, _ in ordered], [c.tenant_id for _, c in ordered],
                                        [c.version for _, c in ordered], [values[k].decode() for k, _ in ordered])
        return set(states) - {row[0] for row in written}


WAITING_REBUILT = 10_000  # conversations put back in their queues after Redis restarted, at most


class ConversationStore:
    """Conversation states in Redis, checked against and written through to ``DurableStates``; the owned
    ones also in memory between batches."""

    def __init__(self, redis: Redis, durable: DurableStates, *, owned_max: int = OWNED_MAX) -> None:
        # Every batch's commands go on the client's multiplexed connection (``db.redis_wire``), replies unparsed:
        # only ``INFO``'s run id is read (parsing the whole section into a dict cost about 55 µs of CPU a batch).
        self.wire = redis_wire(redis)
        self.durable = durable
        self.run_id: str | None = None  # of the Redis server, as last seen
        self.queues_doubtful = True  # the hand-off queues may lack waiting conversations (start, Redis restart)
        self._to_requeue: deque[tuple[str, Conversation]] = deque()  # read back for that, not requeued yet
        self._owned: dict[str, Conversation] = {}  # saved states, least recently saved first
        self._owned_max = owned_max
        self._revocations = 0  # counted on the consumer's polling thread
        self._forgotten_at = 0  # ``_revocations`` when memory was last forgotten

    def revoked(self) -> None:
        """Partitions were revoked or lost (the consumer's polling thread): forget memory before the next batch."""
        self._revocations += 1

    async def load(self, keys: Collection[str]) -> tuple[dict[str, Conversation], dict[str, Conversation]]:
        """The states of ``keys`` (new ones empty), and those of them Redis lacked or held from another run."""
        ordered = sorted(keys)
        if not ordered:
            return {}, {}
        if self._forgotten_at != self._revocations:
            self._forgotten_at = self._revocations
            self._owned.clear()
        # Taken out of memory: the batch changes them in place, and puts them back only once they are saved.
        held = {k: c for k in ordered if (c := self._owned.pop(k, None)) is not None}
        asked = [k for k in ordered if k not in held]
        commands: list[Command] = [("INFO", "server")]
        if held:
            commands.append(("EXISTS", *(redis_keys.conversation(k) for k in held)))
        if asked:
            commands.append(("MGET", *(redis_keys.conversation(k) for k in asked)))
        replies = await self.wire.run(commands, raise_on_error=False)
        for reply in replies[1:]:
            if isinstance(reply, Exception):
                raise reply
        run_before = self.run_id
        self._seen_run(replies[0])
        if held and (replies[1] != len(held) or self.run_id != run_before):
            # Redis lost one of them, or restarted: read them all as if memory had none.
            log.info("%d conversation state(s) in memory checked again (Redis lacks some or restarted)", len(held))
            held, asked = {}, ordered
            values = await self.wire.mget([redis_keys.conversation(k) for k in ordered])
        else:
            values = replies[-1] if asked else []
        cached = {k: Conversation.from_dict(orjson.loads(v)) for k, v in zip(asked, values, strict=True) if v}
        doubtful = [k for k in asked if k not in cached or cached[k].redis_run != self.run_id]
        durable = await self.durable.load(doubtful) if doubtful else {}
        states = {k: held.get(k) or cached.get(k) or Conversation() for k in ordered}
        back = {}
        for key in doubtful:
            found = [c for c in (cached.get(key), durable.get(key)) if c is not None]
            if found:
                states[key] = back[key] = max(found, key=lambda c: (c.version, c.saves))
        if durable:
            log.info("%d conversation state(s) read from PostgreSQL (Redis lacked them or restarted since)",
                     len(durable))
        return states, back

    async def save(self, changed: Mapping[str, Conversation], back: Mapping[str, Conversation],
                   kept: Mapping[str, Conversation] | None = None) -> None:
        """``changed`` states to PostgreSQL then Redis, ``back`` (as loaded) to Redis only; all of them and
        ``kept`` (the batch's other states, unchanged) to memory once written."""
        for conv in changed.values():
            conv.saves += 1
        for conv in [*changed.values(), *back.values()]:
            conv.redis_run = self.run_id
        values = {k: encoded(c) for k, c in {**back, **changed}.items()}  # once, for PostgreSQL and Redis
        stale = await self.durable.save(changed, values)
        if stale:  # two writers at once (a rebalance) or Redis rolled back in the same run: keep PostgreSQL's
            log.error("conversation states older than PostgreSQL's not saved: %s", sorted(stale))
        cached = {k: c for k, c in {**back, **changed}.items() if k not in stale}
        commands: list[Command] = [("DEL", redis_keys.conversation(key)) for key in stale]
        for key, conv in cached.items():
            commands.append(("SET", redis_keys.conversation(key), values[key], "EX", STATE_TTL_S))
            if conv.last_inbound_at:
                pnid, _, wa_id = key.partition(":")
                commands.append(("SET", redis_keys.service_window(pnid, wa_id), str(conv.last_inbound_at),
                                 "EX", SERVICE_WINDOW_S + 3600))
        await self.wire.run(commands)
        self._own({**(kept or {}), **cached})

    def _own(self, states: Mapping[str, Conversation]) -> None:
        """Keep ``states`` (as saved) in memory for the next batch; the least recently saved go first."""
        owned = self._owned
        for key, conv in states.items():
            owned.pop(key, None)
            owned[key] = conv
        while len(owned) > self._owned_max:
            del owned[next(iter(owned))]

    def _seen_run(self, info: Any) -> None:
        run_id = _run_id(info)
        if run_id is None and self.run_id is not None:
            log.warning("Redis does not tell its run id (INFO refused?): its states are trusted as they are")
        elif run_id != self.run_id and self.run_id is not None:
            log.warning("Redis restarted or failed over (run %s, was %s): its states are checked against "
                        "PostgreSQL's as they are read", run_id, self.run_id)
            self.queues_doubtful = True
        self.run_id = run_id

    async def to_requeue(self) -> deque[tuple[str, Conversation]]:
        """The conversations waiting for a person that may have lost their place in the hand-off queues: after a
        start or a Redis restart, read once from PostgreSQL (at most ``WAITING_REBUILT``). The caller takes each
        from the left once it is back in its queue, so a batch given up half-way (a failure, the runtime's
        deadline) goes on where it stopped."""
        if self.queues_doubtful:
            self._to_requeue = deque(await self.durable.waiting(WAITING_REBUILT))
            self.queues_doubtful = False
            if self._to_requeue:
                log.info("%d waiting conversation(s) to put back in their hand-off queues", len(self._to_requeue))
        return self._to_requeue


def _run_id(info: Any) -> str | None:
    """The ``run_id`` field of an ``INFO server`` reply, as Redis sent it; None when it has none."""
    text = info.decode("latin-1") if isinstance(info, bytes) else info
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line[len("run_id:"):].strip() or None
    return None
