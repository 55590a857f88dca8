"""A batch writes what its events write one transaction each, repeats and all.

The projector writes a batch a kind of fact at a time (one statement per kind: ``db.bulk``), so the
inputs of one kind about one row — a redelivered status with another time, a result and its replay, a
customer's messages under changing profile names, two changes of one conversation, one event twice — are
first reduced to what their upserts in sequence would leave. Each case below projects the same inputs in a
tenant (and phone number) of its own as one batch and as one transaction per input, into the real
PostgreSQL, and compares the rows, and the rows of the batch written again (a redelivery).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event as sql_events
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.tables import tenants
from projector.writer import write_events
from schemas.conversation import ConversationChanged, RuleExecuted
from schemas.events import Event, InboundMessage, StatusUpdate
from schemas.outbound import MessageQueued, OutboundResult
from tests.integration.helpers import fresh_id

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CUSTOMER = "15550001111"
TABLES = ("messages", "message_statuses", "conversations", "contacts", "conversation_events", "rule_executions")
STAMPED = {"id", "created_at", "updated_at", "received_at"}  # set by the database, not by an input


@dataclass(frozen=True)
class Run:
    """One projection's own tenants (a second one for a conversation key shared across tenants) and number."""

    tenant: str
    other_tenant: str
    phone_number_id: str

    @property
    def key(self) -> str:
        return f"{self.phone_number_id}:{CUSTOMER}"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _status(run: Run, wamid: str, status: str, seconds: float, event: str, *, code: int | None = None,
            key: str | None = None) -> StatusUpdate:
    return StatusUpdate(
        event_id=f"{run.tenant}:{event}", tenant_id=run.tenant, phone_number_id=run.phone_number_id, waba_id="w",
        received_at=at(seconds + 1), wamid=f"{run.tenant}:{wamid}", recipient_id=CUSTOMER, status=status,
        timestamp=at(seconds), error_code=code, error_title="undeliverable" if code else None,
        biz_opaque_callback_data=key, payload={"status": status, "seen": event})


def _reply(run: Run, n: int, seconds: float) -> tuple[MessageQueued, OutboundResult]:
    message_id = f"{run.tenant}:m{n}"
    addressed: dict[str, Any] = {"tenant_id": run.tenant, "message_id": message_id,
                                 "idempotency_key": f"{message_id}:key", "phone_number_id": run.phone_number_id,
                                 "to": CUSTOMER}
    queued = MessageQueued(event_id=f"{message_id}:q", message={"type": "text", "text": {"body": f"reply {n}"}},
                           requested_by="ai", created_at=at(seconds), **addressed)
    result = OutboundResult(event_id=f"{message_id}:r", outcome="accepted", wamid=f"{run.tenant}:w{n}",
                            completed_at=at(seconds + 0.5), **addressed)
    return queued, result


def replies_with_repeats(run: Run) -> list[Event]:
    """Two replies; a result and its replay (later, failed: the earlier stands), statuses repeated with other
    times and payloads (the earliest stands), one before its message's result, a failure after a delivery (in the
    history only)."""
    q1, r1 = _reply(run, 1, 0)
    q2, r2 = _reply(run, 2, 10)
    replay = r2.model_copy(update={"event_id": f"{r2.event_id}:replay", "outcome": "failed", "wamid": None,
                                   "error_code": 131000, "completed_at": at(30)})
    return [
        _status(run, "w1", "sent", 2, "s1", key=q1.idempotency_key), q1, q1, r1,
        _status(run, "w1", "sent", 1.5, "s1-again", key=q1.idempotency_key),
        _status(run, "w1", "delivered", 3, "d1"), replay, q2, r2,
        _status(run, "w2", "sent", 12, "s2", key=q2.idempotency_key),
        _status(run, "w2", "delivered", 13, "d2"), _status(run, "w2", "failed", 14, "f2", code=131026),
        _status(run, "w1", "read", 4, "r1"), _status(run, "w1", "read", 4, "r1-copy"),
        _status(run, "w2", "delivered", 12.5, "d2-earlier"),
    ]


def queued_replies_some_reported_early(run: Run) -> list[Event]:
    """Twelve queued replies: statuses reported with the keys of three before any result (their rows wait for
    their message), results for two of those three and two others."""
    replies = [_reply(run, n, n) for n in range(1, 13)]
    early = [_status(run, f"w{n}", "sent", n + 0.2, f"s{n}", key=replies[n - 1][0].idempotency_key)
             for n in (3, 7, 11)]
    return [*early, *(queued for queued, _ in replies), *(replies[n - 1][1] for n in (3, 5, 7, 9))]


def _inbound(run: Run, n: int, seconds: float, profile: str | None, **names: str) -> InboundMessage:
    wamid = f"{run.tenant}:in{n}"
    return InboundMessage(
        event_id=wamid, tenant_id=run.tenant, phone_number_id=run.phone_number_id, waba_id="w",
        received_at=at(seconds + 1), wamid=wamid, wa_id=CUSTOMER, profile_name=profile, type="text",
        timestamp=at(seconds), text=f"message {n}", payload={"text": {"body": f"message {n}"}}, **names)


def customer_messages(run: Run) -> list[Event]:
    """A customer's messages out of order under three names (the latest name stands), one without a name, the
    number and username filled by some; one message twice."""
    late = _inbound(run, 3, 30, "Ann C.", username="ann")
    return [_inbound(run, 2, 20, "Ann B.", phone=CUSTOMER), late, _inbound(run, 1, 10, "Ann"),
            _inbound(run, 4, 25, None, username="ann_b"), late]


def _change(run: Run, version: int, state: str, event: str, tenant: str | None = None) -> ConversationChanged:
    return ConversationChanged(
        event_id=f"{run.tenant}:{event}", tenant_id=tenant or run.tenant, conversation_key=run.key,
        phone_number_id=run.phone_number_id, wa_id=CUSTOMER, state=state, cause="rule", version=version,
        at=at(version))


def conversation_changes(run: Run) -> list[Event]:
    """Changes out of order, two of one version (the first stands), one event twice, a rule twice."""
    rule = RuleExecuted(event_id=f"{run.tenant}:rule", tenant_id=run.tenant, conversation_key=run.key,
                        rule_id="r1", rule_name="hours", trigger_event="wamid.x", actions=[{"type": "reply"}],
                        stopped=False, at=at(2))
    two = _change(run, 2, "agent", "v2")
    return [_change(run, 3, "queued", "v3"), two, rule, _change(run, 1, "queued", "v1"),
            _change(run, 3, "closed", "v3-other"), two, rule]


def a_key_under_two_tenants(run: Run) -> list[Event]:
    """A number that moved tenant: one conversation key named by both (the first to write the row owns it)."""
    other = Run(run.other_tenant, run.tenant, run.phone_number_id)
    q1, _ = _reply(other, 1, 5)
    return [_change(run, 1, "queued", "v1"), _inbound(other, 1, 3, "Bo"), q1,
            _change(run, 4, "agent", "v4-other", tenant=run.other_tenant), _inbound(run, 1, 7, "Ann"),
            _change(run, 2, "agent", "v2")]


Case = Callable[[Run], list[Event]]


async def _new_run(db: AsyncEngine) -> Run:
    run = Run(str(uuid.uuid4()), str(uuid.uuid4()), fresh_id())
    async with db.begin() as conn:
        await conn.execute(insert(tenants), [{"id": run.tenant, "name": "batch"},
                                             {"id": run.other_tenant, "name": "batch (other)"}])
    return run


async def _rows(db: AsyncEngine, run: Run) -> dict[str, list[str]]:
    """Each table's rows of the run's tenants, without what the database stamps, the run's ids as names."""
    out: dict[str, list[str]] = {}
    async with db.connect() as conn:
        for table in TABLES:
            found = await conn.execute(text(
                f"SELECT to_jsonb(t) FROM {table} t WHERE tenant_id IN (CAST(:a AS uuid), CAST(:b AS uuid))"),  # noqa: S608
                {"a": run.tenant, "b": run.other_tenant})
            rows = []
            for (row,) in found:
                values = json.loads(row) if isinstance(row, str) else row
                shown = json.dumps({k: v for k, v in values.items() if k not in STAMPED}, sort_keys=True)
                rows.append(shown.replace(run.other_tenant, "OTHER").replace(run.tenant, "TENANT")
                            .replace(run.phone_number_id, "PNID"))
            out[table] = sorted(rows)
    return out


async def _write(db: AsyncEngine, events: Sequence[Event]) -> None:
    async with db.begin() as conn:
        await write_events(conn, events)


@pytest.mark.parametrize("case", [replies_with_repeats, customer_messages, conversation_changes,
                                  a_key_under_two_tenants, queued_replies_some_reported_early],
                         ids=lambda case: case.__name__)
async def test_a_batch_writes_what_its_events_write_one_by_one(db: AsyncEngine, case: Case) -> None:
    one_by_one = await _new_run(db)
    for event in case(one_by_one):
        await _write(db, [event])
    want = await _rows(db, one_by_one)
    batched = await _new_run(db)
    events = case(batched)
    await _write(db, events)
    assert await _rows(db, batched) == want
    await _write(db, events)  # redelivered
    assert await _rows(db, batched) == want
    assert want["conversations"]  # every case names a conversation


async def test_the_repeats_end_as_their_upserts_in_sequence_would(db: AsyncEngine) -> None:
    run = await _new_run(db)
    await _write(db, replies_with_repeats(run) + customer_messages(run) + conversation_changes(run))
    rows = {table: [json.loads(r) for r in found] for table, found in (await _rows(db, run)).items()}
    outbound = {m["message_id"]: m for m in rows["messages"] if m["message_id"]}
    first, second = outbound["TENANT:m1"], outbound["TENANT:m2"]
    assert (first["wamid"], first["status"]) == ("TENANT:w1", "read")
    assert (second["wamid"], second["status"], second["error_code"]) == ("TENANT:w2", "delivered", None)
    assert second["result"]["outcome"] == "accepted"  # the replay came later: the first result stands
    statuses = {(s["wamid"], s["status"]): s for s in rows["message_statuses"]}
    assert statuses[("TENANT:w1", "sent")]["payload"]["seen"] == "s1-again"  # the earliest time stands
    assert statuses[("TENANT:w1", "read")]["payload"]["seen"] == "r1"  # of equal times, the first
    assert statuses[("TENANT:w2", "delivered")]["payload"]["seen"] == "d2-earlier"
    assert not statuses[("TENANT:w2", "failed")]["applied"]  # after the delivery: in the history only
    [contact] = rows["contacts"]
    assert (contact["profile_name"], contact["phone"], contact["username"]) == ("Ann C.", CUSTOMER, "ann")
    [conversation] = rows["conversations"]
    assert (conversation["state"], conversation["version"]) == ("queued", 3)
    assert conversation["last_inbound_at"].startswith("2025-06-01T12:00:30")
    assert len(rows["rule_executions"]) == 1


async def _row_writes(conn: AsyncConnection) -> tuple[int, int]:
    """The rows of ``messages`` inserted and updated by this connection's statistics not reported yet (its earlier
    transactions' too: compare two readings in one transaction, where nothing is reported)."""
    row = (await conn.execute(text(
        "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'messages'"))).one()
    return int(row.n_tup_ins), int(row.n_tup_upd)


@pytest.mark.parametrize("one_batch", [False, True], ids=["two batches", "one batch"])
async def test_a_reply_is_inserted_queued_and_settled_in_one_update(db: AsyncEngine, one_batch: bool) -> None:
    """Each version of a ``messages`` row writes every index of the table (``status`` is in the dashboards'):
    a queued reply is inserted with its status, not updated after; its result is the verdict's update, then one
    update of its wamid and status together."""
    run = await _new_run(db)
    queued, result = _reply(run, 1, 0)
    async with db.begin() as conn:
        before = await _row_writes(conn)

        async def written() -> tuple[int, int]:
            now = await _row_writes(conn)
            return now[0] - before[0], now[1] - before[1]

        if one_batch:
            await write_events(conn, [queued, result])
        else:
            await write_events(conn, [queued])
            assert await written() == (1, 0)
            await write_events(conn, [result])
        assert await written() == (1, 2)
    [row] = [json.loads(found) for found in (await _rows(db, run))["messages"]]
    assert (row["status"], row["wamid"], row["status_at"]) == ("accepted", "TENANT:w1", "2025-06-01T12:00:00.5+00:00")


async def test_a_batch_reads_the_early_wamids_of_its_queued_replies_in_one_statement(db: AsyncEngine) -> None:
    """Settling a queued reply looks for the wamids Meta reported with its key before its result: one statement
    for the whole batch, not one per reply; the replies reported early still take their wamids."""
    run = await _new_run(db)
    events = queued_replies_some_reported_early(run)
    early_lookups: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "idempotency_key" in statement and "message_id IS NULL" in statement and statement.startswith("SELECT"):
            early_lookups.append(statement)

    sql_events.listen(db.sync_engine, "before_cursor_execute", record)
    try:
        await _write(db, events)
    finally:
        sql_events.remove(db.sync_engine, "before_cursor_execute", record)
    assert len(early_lookups) == 1, early_lookups
    rows = [json.loads(found) for found in (await _rows(db, run))["messages"]]
    wamids = {row["message_id"]: row["wamid"] for row in rows if row["message_id"]}
    assert len(wamids) == 12
    assert {n for n in range(1, 13) if wamids[f"TENANT:m{n}"]} == {3, 5, 7, 9, 11}
    assert wamids["TENANT:m11"] == "TENANT:w11"  # reported early, no result yet: adopted all the same
    assert not [row for row in rows if not row["message_id"]]  # no early row left waiting
