"""Nothing recorded is lost, whatever order the topics deliver it in.

The projector reads several topics whose partitions are consumed independently, so the inputs
about one message (queued record, send result, Meta's statuses) or one conversation (state
changes, contact changes, rule executions, AI outcomes, inbound messages) reach it in any order.
Each scenario below feeds the same inputs in every order (or a deterministic sample when there are
too many) through the real ``projector.writer.write_events`` into the real PostgreSQL, each order
in a tenant (and phone number) of its own, as one transaction per input and as one batch, and checks
that the rows are identical across orders and equal to what the natural order gives.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import (
    account_events,
    contacts,
    conversation_events,
    conversations,
    message_statuses,
    messages,
    rule_executions,
    signups,
    tenants,
)
from projector.writer import write_events
from schemas.conversation import AiOutcome, ContactChanged, ConversationChanged, RuleExecuted
from schemas.events import Event, InboundMessage, StatusUpdate
from schemas.outbound import MessageQueued, OutboundResult, local_failure_status
from schemas.signup import SignupNumber, SignupRequest, SignupResult, SignupWaba
from tests.integration.helpers import fresh_id

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
CUSTOMER = "15557654321"
WAMID = "wamid.HBgLMTU1NTc2NTQzMjEVAgARGBI1QjdGRkQ3"
WAMID_B = "wamid.HBgLMTU1NTc2NTQzMjEVAgARGBI5OUFBQ0ZF"
INBOUND_WAMID = "wamid.HBgLMTU1NTc2NTQzMjEVAgASGBQzQUU0RDNBRjU3"
TABLES = (messages, message_statuses, conversations, contacts, conversation_events, rule_executions, signups,
          account_events)
# Stamped by the database when a row is written, not taken from any input.
DB_TIME = {"id", "created_at", "updated_at", "received_at"}
# How many orders each scenario is fed in: every one up to these counts (720 = all orders of 6 inputs).
MOST_SEPARATE = 720
MOST_BATCHED = 120


@dataclass(frozen=True)
class Run:
    """One order's own tenant and phone number (conversation keys and event ids are global)."""

    tenant_id: str
    phone_number_id: str

    @property
    def key(self) -> str:
        return f"{self.phone_number_id}:{CUSTOMER}"

    @property
    def idempotency_key(self) -> str:
        return f"{self.tenant_id}:reply-1"

    def at(self, seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)


Scenario = Callable[[Run], list[Event]]


# --- inputs --------------------------------------------------------------------------------------

def _queued(run: Run) -> MessageQueued:
    return MessageQueued(
        event_id=f"m-{run.tenant_id}:queued", tenant_id=run.tenant_id, message_id=f"m-{run.tenant_id}",
        phone_number_id=run.phone_number_id, idempotency_key=run.idempotency_key, to=CUSTOMER, requested_by="ai",
        message={"type": "text", "text": {"body": "Our shop opens at nine."}}, created_at=run.at(0))


def _result(run: Run, outcome: str = "accepted", **fields: Any) -> OutboundResult:
    values: dict[str, Any] = {"wamid": WAMID, "completed_at": run.at(0.4), **fields}
    return OutboundResult(
        event_id=f"m-{run.tenant_id}:result", tenant_id=run.tenant_id, message_id=f"m-{run.tenant_id}",
        idempotency_key=run.idempotency_key, phone_number_id=run.phone_number_id, to=CUSTOMER, outcome=outcome,
        **values)


def _status(run: Run, status: str, seconds: float, *, wamid: str = WAMID, code: int | None = None,
            callback: bool = True) -> StatusUpdate:
    raw: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(run.at(seconds).timestamp())),
                           "recipient_id": CUSTOMER}
    title = "Message undeliverable" if code else None
    if code:
        raw["errors"] = [{"code": code, "title": title, "error_data": {"details": "the number is gone"}}]
    return StatusUpdate(
        event_id=f"{run.tenant_id}:{wamid}:{status}", tenant_id=run.tenant_id, phone_number_id=run.phone_number_id,
        waba_id="waba-1", received_at=run.at(seconds + 1), wamid=wamid, recipient_id=CUSTOMER, status=status,
        timestamp=run.at(seconds), error_code=code, error_title=title,
        error_details="the number is gone" if code else None,
        biz_opaque_callback_data=run.idempotency_key if callback else None, payload=raw)


def _changed(run: Run, version: int, state: str, **fields: Any) -> ConversationChanged:
    return ConversationChanged(
        event_id=f"{run.key}:v{version}", tenant_id=run.tenant_id, conversation_key=run.key,
        phone_number_id=run.phone_number_id, wa_id=CUSTOMER, state=state, cause=fields.pop("cause", "rule"),
        version=version, at=run.at(version), **fields)


def _contact(run: Run, n: int, tags: list[str], opted_out: bool, seconds: float) -> ContactChanged:
    return ContactChanged(event_id=f"{run.key}:contact:{n}", tenant_id=run.tenant_id, wa_id=CUSTOMER, tags=tags,
                          attributes={"plan": f"p{n}"}, opted_out=opted_out, at=run.at(seconds))


def _inbound(run: Run, wamid: str, text: str, profile: str, seconds: float) -> InboundMessage:
    return InboundMessage(
        event_id=f"{run.tenant_id}:{wamid}", tenant_id=run.tenant_id, phone_number_id=run.phone_number_id,
        waba_id="waba-1", received_at=run.at(seconds + 1), wamid=wamid, wa_id=CUSTOMER, profile_name=profile,
        type="text", timestamp=run.at(seconds), text=text,
        payload={"from": CUSTOMER, "id": wamid, "type": "text", "text": {"body": text}})


# --- scenarios -----------------------------------------------------------------------------------

def delivered_reply(run: Run) -> list[Event]:
    """An AI reply: queued, accepted by Meta, sent, delivered, read; the conversation changes meanwhile."""
    return [_queued(run), _result(run), _status(run, "sent", 1), _status(run, "delivered", 2),
            _status(run, "read", 3), _changed(run, 2, "agent", assignee_id="agent-1", cause="agent_reply")]


def failed_reply(run: Run) -> list[Event]:
    """Meta accepts, then the message fails (131026); a contradicting later delivered stays in the history."""
    return [_queued(run), _result(run), _status(run, "sent", 1), _status(run, "failed", 2, code=131026),
            _status(run, "delivered", 3)]


def local_failure(run: Run) -> list[Event]:
    """Refused by Aerostic (outside the window): a failed result, the failed status that records it, a replay."""
    result = _result(run, "failed", wamid=f"local.m-{run.tenant_id}", error_code=-1,
                     error_title="outside_service_window", error_details="send a template", local=True)
    replayed = result.model_copy(update={"replayed": True, "completed_at": run.at(7)})  # redelivered request
    return [_queued(run), result, local_failure_status(result), replayed]


def ambiguous_double_send(run: Run) -> list[Event]:
    """Both calls timed out after Meta accepted: no wamid in the result, two wamids carrying our key."""
    result = _result(run, "failed", wamid=None, ambiguous=True, attempts=2,
                     error_title="ambiguous_outcome: timeout")
    return [_queued(run), result, _status(run, "sent", 1, wamid=WAMID_B), _status(run, "delivered", 2, wamid=WAMID_B),
            _status(run, "sent", 1, wamid=WAMID)]


def conversation(run: Run) -> list[Event]:
    """A customer's two messages (and a changed profile name), state changes, contact changes, a rule, the AI."""
    return [
        _inbound(run, INBOUND_WAMID, "hi", "Ann", 0), _inbound(run, WAMID_B, "STOP", "Ann B.", 20),
        _status(run, "read", 21, wamid=INBOUND_WAMID, callback=False),
        _changed(run, 1, "queued", team="sales", reason="asked for a person", cause="ai_handoff"),
        _changed(run, 2, "agent", assignee_id="agent-7", team="sales", cause="claim"),
        _changed(run, 3, "closed", cause="resolve"),
        _contact(run, 1, ["vip"], False, 5), _contact(run, 2, ["vip"], True, 21),
        _contact(run, 3, ["vip", "x"], True, 22),
        RuleExecuted(event_id=f"{run.key}:rule:1", tenant_id=run.tenant_id, conversation_key=run.key,
                     rule_id="builtin:opt_out", rule_name="STOP", trigger_event=WAMID_B,
                     actions=[{"type": "opt_out"}], stopped=True, at=run.at(21)),
        AiOutcome(event_id=f"{run.key}:ai:1", tenant_id=run.tenant_id, conversation_key=run.key,
                  message_wamid=INBOUND_WAMID, outcome="handoff", confidence=0.2, reason="low confidence",
                  applied=True, at=run.at(1)),
    ]


def signup(run: Run) -> list[Event]:
    """A connected attempt whose request was redelivered and failed (the code was already used)."""
    attempt = f"attempt-{run.tenant_id}"
    request = SignupRequest(event_id=f"{attempt}:request", tenant_id=run.tenant_id, attempt_id=attempt,
                            code="one-time-code", redirect_uri="https://example.test/meta/callback",
                            requested_by="user:admin", requested_at=run.at(0))
    connected = SignupResult(
        event_id=f"{attempt}:connected", tenant_id=run.tenant_id, attempt_id=attempt, outcome="connected",
        wabas=[SignupWaba(waba_id="waba-1", name="Shop")],
        numbers=[SignupNumber(phone_number_id=run.phone_number_id, waba_id="waba-1", registered=True)],
        finished_at=run.at(3))
    failed = SignupResult(event_id=f"{attempt}:failed", tenant_id=run.tenant_id, attempt_id=attempt,
                          outcome="failed", step="exchange", error_code=100, error_message="code already used",
                          finished_at=run.at(9))
    return [request, connected, failed]


# --- running and comparing -----------------------------------------------------------------------

async def _new_run(db: AsyncEngine) -> Run:
    run = Run(str(uuid.uuid4()), fresh_id())
    async with db.begin() as conn:
        await conn.execute(insert(tenants).values(id=run.tenant_id, name="projection order"))
    return run


async def _project(db: AsyncEngine, events: Sequence[Event], *, batched: bool) -> None:
    if batched:
        async with db.begin() as conn:
            await write_events(conn, events)
        return
    for event in events:
        async with db.begin() as conn:
            await write_events(conn, [event])


def _normalised(run: Run, table: Table, found: Sequence[Any]) -> list[str]:
    """The rows without what the database stamps, with this run's own ids replaced by placeholders."""
    out = []
    for row in found:
        values = {k: v for k, v in row._mapping.items() if k not in DB_TIME and k != "tenant_id"}
        text = json.dumps(values, default=str, sort_keys=True)
        out.append(text.replace(run.tenant_id, "TENANT").replace(run.phone_number_id, "PNID"))
    return sorted(out)


async def _snapshot(db: AsyncEngine, run: Run) -> dict[str, list[str]]:
    async with db.connect() as conn:
        return {t.name: _normalised(run, t, (await conn.execute(select(t).where(t.c.tenant_id == run.tenant_id))).all())
                for t in TABLES}


def _orders(count: int, most: int) -> list[tuple[int, ...]]:
    """Every order of ``count`` inputs if there are at most ``most``, else the natural order, its reverse
    and a fixed sample of the others."""
    natural = tuple(range(count))
    if math.factorial(count) <= most:
        return list(itertools.permutations(natural))
    rng = random.Random(f"orders-{count}-{most}")  # a reproducible sample
    sample = {natural, natural[::-1]}
    while len(sample) < most:
        sample.add(tuple(rng.sample(natural, count)))
    return sorted(sample)


async def _converges(db: AsyncEngine, scenario: Scenario, *, batched: bool,
                     most: int | None = None) -> tuple[Run, dict[str, list[str]]]:
    """Project the orders of ``scenario``; returns the natural order's run and rows, the others must equal them."""
    reference_run = await _new_run(db)
    inputs = scenario(reference_run)
    await _project(db, inputs, batched=batched)
    reference = await _snapshot(db, reference_run)
    orders = _orders(len(inputs), most or (MOST_BATCHED if batched else MOST_SEPARATE))
    differing: dict[tuple[int, ...], dict[str, list[str]]] = {}
    for order in orders:
        run = await _new_run(db)
        events = scenario(run)
        await _project(db, [events[i] for i in order], batched=batched)
        got = await _snapshot(db, run)
        if got != reference:
            differing[order] = got
    assert not differing, _difference(len(orders), reference, differing)
    return reference_run, reference


def _difference(tried: int, want: dict[str, list[str]],
                differing: dict[tuple[int, ...], dict[str, list[str]]]) -> str:
    tables = sorted({t for got in differing.values() for t in want if got[t] != want[t]})
    lines = [f"{len(differing)} of {tried} orders give other rows (in {', '.join(tables)})"]
    for order, got in list(differing.items())[:3]:
        lines.append(f"order {order}:")
        for table in want:
            if want[table] != got[table]:
                lines += [f"  {table}: natural order", *(f"    {r}" for r in want[table]),
                          f"  {table}: this order", *(f"    {r}" for r in got[table])]
    return "\n".join(lines)


def _rows(snapshot: dict[str, list[str]], table: str) -> list[dict[str, Any]]:
    return [json.loads(r) for r in snapshot[table]]


BATCHING = pytest.mark.parametrize("batched", [False, True], ids=["one-per-transaction", "one-batch"])


@BATCHING
async def test_a_delivered_reply_converges(db: AsyncEngine, batched: bool) -> None:
    _, rows = await _converges(db, delivered_reply, batched=batched)
    [message] = _rows(rows, "messages")
    assert (message["type"], message["text"], message["wamid"]) == ("text", "Our shop opens at nine.", WAMID)
    assert (message["status"], message["message_id"], message["requested_by"]) == ("read", "m-TENANT", "ai")
    assert message["payload"] == {"type": "text", "text": {"body": "Our shop opens at nine."}}
    assert message["sent_at"] is not None and message["attempts"] == 1
    assert {(s["status"], s["applied"]) for s in _rows(rows, "message_statuses")} == {
        ("sent", True), ("delivered", True), ("read", True)}
    [conv] = _rows(rows, "conversations")
    assert (conv["state"], conv["assignee_id"], conv["version"]) == ("agent", "agent-1", 2)
    assert conv["last_message_at"] is not None


@BATCHING
async def test_a_reply_that_failed_after_it_was_sent_converges(db: AsyncEngine, batched: bool) -> None:
    _, rows = await _converges(db, failed_reply, batched=batched)
    [message] = _rows(rows, "messages")
    assert (message["status"], message["error_code"], message["error_title"]) == (
        "failed", 131026, "Message undeliverable")
    assert message["text"] == "Our shop opens at nine."
    assert {(s["status"], s["applied"]) for s in _rows(rows, "message_statuses")} == {
        ("sent", True), ("failed", True), ("delivered", False)}


@BATCHING
async def test_a_local_failure_converges(db: AsyncEngine, batched: bool) -> None:
    _, rows = await _converges(db, local_failure, batched=batched)
    [message] = _rows(rows, "messages")
    assert (message["status"], message["error_code"], message["error_title"]) == (
        "failed", -1, "outside_service_window")
    assert (message["wamid"], message["type"], message["status_at"]) == ("local.m-TENANT", "text",
                                                                          "2025-03-01 09:30:00.400000+00:00")
    assert [(s["status"], s["applied"]) for s in _rows(rows, "message_statuses")] == [("failed", True)]


@BATCHING
async def test_an_ambiguous_double_send_converges(db: AsyncEngine, batched: bool) -> None:
    _, rows = await _converges(db, ambiguous_double_send, batched=batched)
    found = _rows(rows, "messages")
    [ours] = [m for m in found if m["message_id"] is not None]
    assert ours["text"] == "Our shop opens at nine." and ours["ambiguous"] and ours["attempts"] == 2
    # Meta's statuses resolve the outcome: ours is the least wamid reported with our key, the other
    # copy Meta accepted stays a row of its own.
    assert (ours["wamid"], ours["status"], ours["error_title"]) == (WAMID, "sent", None)
    [copy] = [m for m in found if m["message_id"] is None]
    assert (copy["wamid"], copy["status"], copy["idempotency_key"]) == (WAMID_B, "delivered", "TENANT:reply-1")


@BATCHING
async def test_a_conversation_converges(db: AsyncEngine, batched: bool) -> None:
    _, rows = await _converges(db, conversation, batched=batched, most=120)
    [conv] = _rows(rows, "conversations")
    assert (conv["state"], conv["version"], conv["team"]) == ("closed", 3, None)
    assert conv["last_inbound_at"] == conv["last_message_at"] and conv["last_inbound_at"] is not None
    [contact] = _rows(rows, "contacts")
    assert (contact["tags"], contact["opted_out"], contact["profile_name"]) == (["vip", "x"], True, "Ann B.")
    assert contact["opted_out_at"] is not None and contact["opted_out_at"].startswith("2025-03-01 09:30:21")
    inbound = {m["wamid"]: m for m in _rows(rows, "messages")}
    assert {w: (m["direction"], m["text"]) for w, m in inbound.items()} == {
        INBOUND_WAMID: ("inbound", "hi"), WAMID_B: ("inbound", "STOP")}
    assert len(_rows(rows, "conversation_events")) == 8 and len(_rows(rows, "rule_executions")) == 1


@BATCHING
async def test_a_signup_converges(db: AsyncEngine, batched: bool) -> None:
    _, rows = await _converges(db, signup, batched=batched)
    [attempt] = _rows(rows, "signups")
    assert (attempt["status"], attempt["requested_by"], attempt["error_code"]) == ("connected", "user:admin", None)
    assert attempt["requested_at"] is not None and attempt["result"]["numbers"][0]["phone_number_id"] == "PNID"
