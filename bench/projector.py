"""``python -m bench.projector``: the projector's write (``projector.writer.write_events``), CPU per event.

Starts its own PostgreSQL (``stack.services.start_postgres``) with the migrations applied, a tenant, and
writes batches of mixed events — per question: the inbound message, the conversation's change, the reply's
queued record, its send result and Meta's sent/delivered/read statuses — each batch in one transaction, as
the projector does. Every batch is then written again (a redelivery: the same rows, nothing new). Measures
the process's CPU time (``time.process_time``: Python, SQLAlchemy and asyncpg; PostgreSQL's own CPU is
another process) and wall time.

The baseline is the projector of ``--baseline`` (a git revision; by default the last one that wrote event by
event): its tree is extracted from git into a temporary directory and its own bench run there first, against
the same database, with the same settings; then this tree's.

Ends with ``RESULT projector events_per_s=… cpu_ms_per_event=… baseline_cpu_ms_per_event=… new_over_old=…
batches=… batch_size=…`` (the baseline's fields only when there is one).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.migrate import upgrade
from projector.writer import write_events
from schemas.conversation import ConversationChanged
from schemas.events import Event, InboundMessage, StatusUpdate
from schemas.outbound import MessageQueued, OutboundResult
from stack.services import start_postgres

BASELINE = "78cf29b"  # the projector's last per-event writer (a statement or more per event)
PHONE_NUMBER_ID = "bench-pn"
WABA_ID = "bench-waba"
EVENTS_PER_QUESTION = 7


def question_events(tenant: str, n: int, start: datetime) -> list[Event]:
    """The events one customer question brings to the projector (in the order its topics may deliver them)."""
    wa_id = f"9198{n:08d}"
    at = start + timedelta(seconds=n)
    key = f"{PHONE_NUMBER_ID}:{wa_id}"
    message_id, wamid_out = f"bench-{uuid.uuid4().hex}", f"wamid.out.{uuid.uuid4().hex}"
    routed = {"tenant_id": tenant, "phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID, "received_at": at}
    addressed = {"tenant_id": tenant, "message_id": message_id, "idempotency_key": f"idem-{message_id}",
                 "phone_number_id": PHONE_NUMBER_ID, "to": wa_id}
    body = {"type": "text", "text": {"body": "Our opening hours are 9 to 5."}}
    events: list[Event] = [
        InboundMessage(event_id=f"in-{n}-{uuid.uuid4().hex}", wamid=f"wamid.in.{uuid.uuid4().hex}", wa_id=wa_id,
                       profile_name=f"Customer {n}", phone=wa_id, type="text", timestamp=at,
                       text="When are you open?", payload={"text": {"body": "When are you open?"}}, **routed),
        ConversationChanged(event_id=f"cc-{uuid.uuid4().hex}", tenant_id=tenant, conversation_key=key,
                            phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, state="bot", cause="inbound", version=n + 1,
                            at=at),
        MessageQueued(event_id=f"q-{uuid.uuid4().hex}", message=body, requested_by="ai",
                      created_at=at + timedelta(milliseconds=200), **addressed),
        OutboundResult(event_id=f"r-{uuid.uuid4().hex}", outcome="accepted", wamid=wamid_out,
                       completed_at=at + timedelta(milliseconds=400), **addressed),
    ]
    for i, status in enumerate(("sent", "delivered", "read")):
        events.append(StatusUpdate(
            event_id=f"s-{uuid.uuid4().hex}", wamid=wamid_out, recipient_id=wa_id, status=status,
            timestamp=at + timedelta(seconds=1 + i), biz_opaque_callback_data=f"idem-{message_id}",
            payload={"status": status}, **routed))
    return events


async def setup(url: str) -> tuple[AsyncEngine, str]:
    engine = create_async_engine(url, pool_size=2)
    tenant = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (id, name) VALUES (:id, 'bench')"), {"id": tenant})
    return engine, tenant


async def run(url: str, *, batches: int, batch_size: int, warmup: int) -> tuple[float, float, int]:
    engine, tenant = await setup(url)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    questions = max(1, batch_size // EVENTS_PER_QUESTION)
    counter = 0

    def batch() -> list[Event]:
        nonlocal counter
        events: list[Event] = []
        for _ in range(questions):
            events.extend(question_events(tenant, counter, start))
            counter += 1
        return events

    async def write(events: list[Event]) -> None:
        async with engine.begin() as conn:
            await write_events(conn, events)

    for _ in range(warmup):
        events = batch()
        await write(events)
        await write(events)
    prepared = [batch() for _ in range(batches)]
    written = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for events in prepared:
        await write(events)
        await write(events)  # redelivered
        written += 2 * len(events)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await engine.dispose()
    return cpu, wall, written


def baseline(revision: str, url: str, args: argparse.Namespace) -> float:
    """The CPU ms per event of the bench (and projector) of ``revision``, run in a tree of its own."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="aerostic-bench-projector-baseline-") as tree:
        archive = subprocess.run(["git", "-C", str(root), "archive", revision], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        out = subprocess.run([sys.executable, "-m", "bench.projector", "--database-url", url,
                              "--batches", str(args.batches), "--batch-size", str(args.batch_size),
                              "--warmup", str(args.warmup)], cwd=tree, check=True, capture_output=True, text=True)
    found = re.search(r"^RESULT projector .*cpu_ms_per_event=([0-9.]+)", out.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"the baseline printed no RESULT: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    print(f"baseline {revision}: {found.group(0)}", flush=True)
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=500, help="events per batch (whole questions of 7)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--database-url", default="", help="an existing, migrated database (else one is started)")
    parser.add_argument("--baseline", default=BASELINE, help="the git revision measured first ('' for none)")
    args = parser.parse_args()
    service = None
    url = args.database_url
    if not url:
        root = Path(tempfile.mkdtemp(prefix="aerostic-bench-projector-"))
        service = start_postgres(root / "logs", root / "postgres")
        url = service.url
        upgrade(url)
    try:
        old = baseline(args.baseline, url, args) if args.baseline else None
        cpu, wall, written = asyncio.run(run(url, batches=args.batches, batch_size=args.batch_size,
                                             warmup=args.warmup))
    finally:
        if service is not None:
            service.stop()
    size = (args.batch_size // EVENTS_PER_QUESTION) * EVENTS_PER_QUESTION
    new = 1000 * cpu / written
    versus = f" baseline_cpu_ms_per_event={old:.3f} new_over_old={new / old:.3f}" if old else ""
    print(f"RESULT projector events_per_s={written / wall:.0f} cpu_ms_per_event={new:.3f}{versus} "
          f"batches={2 * args.batches} batch_size={size}")


if __name__ == "__main__":
    main()
