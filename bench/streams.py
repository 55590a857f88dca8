"""The conversation processor's CPU per inbound event, old state writes against new, in one run.

``python -m bench.streams --events 2000 --batch 100`` starts a local stack's services (broker, PostgreSQL,
Redis; migrations applied), makes a tenant, then drives ``--events`` inbound messages through
``ConversationProcessor`` batch by batch, as the runtime does: ``process`` (decode, load the states,
the state machine), the outputs appended to the broker, then ``saved`` (the states to PostgreSQL and
Redis). ``old`` writes the states as the processor did before issue 13 (a SQLAlchemy upsert built and
compiled per batch, ``dataclasses.asdict`` per state) and appends the outputs with a ``send`` task each;
``last`` is the processor of the previous step (its PostgreSQL statements through SQLAlchemy's ``execute``); ``new``
is the processor and producer as they are (owned states kept in memory, serialised once, statements on asyncpg's
own pool, ``db.raw_pool``; all variants decode records the new way). The variants alternate ``--rounds``
times, each on conversations of its own; the figure is the CPU of the event loop's thread (``time.thread_time``:
the processor's own work, without the producer's polling threads, whose CPU grows with the wall time a loaded
machine takes) per event, the best round of each. Prints ``RESULT streams …``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.producer import AsyncProducer
from db.raw_pool import close_raw_pool
from db.redis_client import connect_redis
from db.redis_wire import close_redis_wire
from db.tables import conversation_state
from schemas.events import InboundMessage
from stack.launcher import LocalStack
from streams.conversation_state import Conversation
from streams.conversation_store import ConversationStore, DurableStates, PostgresStates
from streams.conversations import ConversationProcessor

PNID = "106540352242922"


# The statements of the previous step, as they were (``text``, named parameters, SQLAlchemy's result types).
_SA_LOAD = sql("SELECT conversation_key, version, state FROM conversation_state "
               "WHERE conversation_key = ANY(CAST(:keys AS text[]))").columns(
    conversation_state.c.conversation_key, conversation_state.c.version, conversation_state.c.state)
_SA_SAVE = sql(
    "INSERT INTO conversation_state (conversation_key, tenant_id, version, state) "
    "SELECT r.key, CAST(r.tenant_id AS uuid), r.version, CAST(r.state AS jsonb) "
    "FROM unnest(CAST(:keys AS text[]), CAST(:tenants AS text[]), CAST(:versions AS bigint[]), "
    "CAST(:states AS text[])) WITH ORDINALITY AS r(key, tenant_id, version, state, n) ORDER BY r.n "
    "ON CONFLICT (conversation_key) DO UPDATE SET tenant_id = excluded.tenant_id, version = excluded.version, "
    "state = excluded.state, updated_at = now() WHERE conversation_state.version <= excluded.version "
    "RETURNING conversation_key")


class LastStates(PostgresStates):
    """The state reads and writes of the previous step: SQLAlchemy's ``execute`` (autocommit), not the raw pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)  # ``waiting``, once a round, stays on the raw pool
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def load(self, keys: Collection[str]) -> dict[str, Conversation]:
        if not keys:
            return {}
        async with self.engine.connect() as conn:
            found = await conn.execute(_SA_LOAD, {"keys": sorted(keys)})
        states = {}
        for key, version, state in found:
            states[key] = Conversation.from_dict(state)
            states[key].version = version
        return states

    async def save(self, states: Mapping[str, Conversation], values: Mapping[str, bytes]) -> set[str]:
        if not states:
            return set()
        ordered = sorted(states.items())
        params = {"keys": [k for k, _ in ordered], "tenants": [c.tenant_id for _, c in ordered],
                  "versions": [c.version for _, c in ordered], "states": [values[k].decode() for k, _ in ordered]}
        async with self.engine.connect() as conn:
            written = set((await conn.execute(_SA_SAVE, params)).scalars())
        return set(states) - written


class OldStates(LastStates):
    """The state writes before issue 13: statements built per batch (compiled again each time), in transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.engine = engine

    async def load(self, keys: Collection[str]) -> dict[str, Conversation]:
        if not keys:
            return {}
        table = conversation_state
        async with self.engine.connect() as conn:
            found = await conn.execute(select(table.c.conversation_key, table.c.version, table.c.state).where(
                table.c.conversation_key.in_(sorted(keys))))
        states = {}
        for key, version, state in found:
            states[key] = Conversation.from_dict(state)
            states[key].version = version
        return states

    async def save(self, states: Mapping[str, Conversation], values: Mapping[str, bytes]) -> set[str]:
        if not states:
            return set()
        table = conversation_state
        rows = insert(table).values([{"conversation_key": key, "tenant_id": conv.tenant_id, "version": conv.version,
                                      "state": conv.to_dict()} for key, conv in sorted(states.items())])
        upsert = rows.on_conflict_do_update(
            index_elements=[table.c.conversation_key],
            set_={"tenant_id": rows.excluded.tenant_id, "version": rows.excluded.version,
                  "state": rows.excluded.state, "updated_at": func.now()},
            where=table.c.version <= rows.excluded.version,
        ).returning(table.c.conversation_key)
        async with self.engine.begin() as conn:
            written = set((await conn.execute(upsert)).scalars())
        return set(states) - written


@contextlib.contextmanager
def old_encoding(enabled: bool) -> Iterator[None]:
    """``Conversation.to_dict`` as it was (``dataclasses.asdict``: a deep copy of every state)."""
    current = Conversation.to_dict
    if enabled:
        Conversation.to_dict = dataclasses.asdict  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Conversation.to_dict = current  # type: ignore[method-assign]


class _Record:
    """What the runtime hands the processor (the parts it reads)."""

    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "wa.inbound"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def _events(tenant: str, run: str, events: int, conversations: int) -> list[_Record]:
    now = datetime.now(UTC)
    records = []
    for n in range(events):
        event = InboundMessage(event_id=f"{run}.{n}", tenant_id=tenant, phone_number_id=PNID, waba_id="w",
                               received_at=now, wamid=f"wamid.{run}.{n}", wa_id=f"1650{run}{n % conversations:05d}",
                               type="text", timestamp=now, text=f"question {n}", payload={})
        records.append(_Record(event.encode(), n))
    return records


async def _round(redis: aioredis.Redis, engine: AsyncEngine, producer: AsyncProducer, states: DurableStates,
                 records: list[_Record], batch: int, old: bool, memory: bool) -> float:
    """CPU seconds to handle ``records`` in batches (process, append the outputs, save the states)."""
    processor = ConversationProcessor(redis, engine, prefix="", states=states)
    if not memory:  # every state read from Redis, as before the states were kept in memory
        processor.store = ConversationStore(redis, states, owned_max=0)
    (await processor.store.to_requeue()).clear()  # none to requeue: the rebuild is not what is measured
    started = time.thread_time()
    for at in range(0, len(records), batch):
        outputs = await processor.process(records[at:at + batch])  # type: ignore[arg-type]
        if old:  # a send (a task) per record, as broker.runtime did
            await asyncio.gather(*(producer.send(o.topic, o.value, o.key) for o in outputs))
        else:
            await producer.send_all([(o.topic, o.value, o.key) for o in outputs])  # as broker.runtime does
        await processor.saved()
    cpu = time.thread_time() - started
    keys = {InboundMessage.decode(r.value()).conversation_key for r in records}
    stored = await PostgresStates(engine).load(keys)  # both variants' rows read back the same way
    assert set(stored) == keys and all(c.version >= 1 and c.last_wamid for c in stored.values()), "states not saved"
    return cpu


async def run(stack: LocalStack, events: int, batch: int, rounds: int, only: str | None) -> dict[str, float]:
    engine = create_async_engine(stack.database_url)
    redis = connect_redis(stack.redis_url, socket_timeout=None)  # the stream worker's client (streams.main)
    tenant = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(sql("INSERT INTO tenants (id, name) VALUES (:id, 'bench streams')"), {"id": tenant})
    best: dict[str, float] = {}
    variants = [v for v in ("old", "last", "new") if only in (None, v)]
    durable = {"old": OldStates, "last": LastStates, "new": PostgresStates}
    try:
        async with AsyncProducer(stack.kafka) as producer:
            for r in range(rounds + 1):  # round 0 warms up (connections, caches)
                for variant in variants:
                    records = _events(tenant, f"{r}{variants.index(variant)}", events, max(1, batch // 2))
                    with old_encoding(variant == "old"):
                        cpu = await _round(redis, engine, producer, durable[variant](engine), records, batch,
                                           variant == "old", variant != "old")
                    if r:
                        best[variant] = min(best.get(variant, cpu), cpu)
                    print(f"round {r} {variant}: {cpu * 1000 / events:.3f} ms CPU per event", flush=True)
    finally:
        await close_redis_wire(redis)
        await redis.aclose()
        await close_raw_pool(engine)
        await engine.dispose()
    return {v: cpu * 1000 / events for v, cpu in best.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000, help="inbound messages per round and variant")
    parser.add_argument("--batch", type=int, default=100, help="records per batch (two per conversation)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("old", "last", "new"), help="one variant (to profile it alone)")
    args = parser.parse_args(argv)
    if not 1 <= args.events <= 100_000 or not 1 <= args.batch <= 1000 or not 1 <= args.rounds <= 20:
        parser.error("--events 1..100000, --batch 1..1000, --rounds 1..20")
    stack = LocalStack()
    try:
        stack.start_services()
        stack.prepare()
        result: dict[str, Any] = asyncio.run(run(stack, args.events, args.batch, args.rounds, args.only))
    finally:
        stack.stop()
    figures = " ".join(f"{v}_cpu_ms_per_event={ms:.3f}" for v, ms in result.items())
    ratio = "".join(f" new_over_{v}={result['new'] / result[v]:.2f}" for v in ("old", "last")
                    if v in result and "new" in result)
    print(f"RESULT streams events={args.events} batch={args.batch} rounds={args.rounds} {figures}{ratio}")


if __name__ == "__main__":
    main()
