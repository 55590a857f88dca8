"""What no input owns, derived again after a batch's facts are written: each message's wamid and status.

A message (our outbound row, found by its message id, else by a status's wamid or idempotency key) takes
its wamid: the result's, else the least wamid reported with its key (``projector.merge.message_wamid``),
adopting the row that wamid's statuses waited in; a copy it had adopted and lost gets a row of its own again.
Then each row's status, status_at and error, and its statuses' ``applied`` flags, are merged from its facts
alone (``projector.merge.merge``).

A batch settles the messages of its queued records and results first, each once, then those its statuses
name (one already settled and holding the status's wamid is not settled again: nothing it depends on
changed since), and derives every row at the end: the wamids' histories read in one query, the rows and
flags written in one statement each. The early wamids of the messages without a verdict are read in one
query too, and again for a message only when the batch moved one of them. A row is written only when what
it derives differs from what it holds, and a wamid the batch's last adoptions moved is written in that same
update (each version of a row writes every index of ``messages``). Rows of one conversation are only
written under its lock (``projector.writer``), so these read-then-write steps do not race.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, column, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import BindParameter

from db.bulk import columns, json_text, rows_insert
from db.tables import message_statuses, messages
from projector.merge import Fact, merge, message_wamid, verdict_fact
from schemas.status_rank import FAILED, RANK

log = logging.getLogger(__name__)

# A status that can become a message's status gets a row even before the message is known.
KNOWN_STATUSES = frozenset({*RANK, FAILED})

# Built once: single rows bind their values, a batch's rows are bound as arrays (db.bulk).
_TENANT: BindParameter[str] = bindparam("tenant")
_WAMID: BindParameter[str] = bindparam("wamid_of")
_m = messages.c
_OURS = (_m.id, _m.wamid, _m.idempotency_key, _m.conversation_key, _m.result, _m.sent_at,
         _m.status, _m.status_at, _m.error_code, _m.error_title, _m.error_details)
_ours = select(*_OURS).where(_m.tenant_id == _TENANT, _m.message_id.is_not(None))
_OURS_BY_WAMID = _ours.where(_m.wamid == _WAMID)
_OURS_BY_KEY = _ours.where(_m.idempotency_key == bindparam("key")).order_by(_m.message_id).limit(1)
_TENANT_COLUMN = column("tenant", Text)
_OURS_OF = ("SELECT r.tenant AS tenant, m.message_id, m.id, m.wamid, m.idempotency_key, m.conversation_key, "
             "m.result, m.sent_at, m.status, m.status_at, m.error_code, m.error_title, m.error_details FROM messages m "
             "JOIN unnest(CAST(:tenants AS text[]), CAST(:keys AS text[])) AS r(tenant, key) "
             "ON m.tenant_id = CAST(r.tenant AS uuid) AND m.message_id IS NOT NULL AND m.")
_OURS_BY_IDS = text(_OURS_OF + "message_id = r.key").columns(_TENANT_COLUMN, _m.message_id, *_OURS)
_OURS_BY_WAMIDS = text(_OURS_OF + "wamid = r.key").columns(_TENANT_COLUMN, _m.message_id, *_OURS)
# Served by the partial index ix_messages_early_by_key (migration 0023) at every table size.
_REPORTED = select(_m.wamid).where(
    _m.tenant_id == _TENANT, _m.idempotency_key == bindparam("key"), _m.message_id.is_(None),
    _m.direction == "outbound", _m.wamid.is_not(None))
# The same for a batch's (tenant, key) pairs at once (``_Batch.reported``). LATERAL, kept by OFFSET 0 from being
# flattened into a join: one lookup of ``ix_messages_early_by_key`` per pair, however many early rows there are.
_REPORTED_OF = text(
    "SELECT r.tenant AS tenant, r.key AS idempotency_key, e.wamid "
    "FROM unnest(CAST(:tenants AS text[]), CAST(:keys AS text[])) AS r(tenant, key) CROSS JOIN LATERAL ("
    "SELECT m.wamid FROM messages m WHERE m.tenant_id = CAST(r.tenant AS uuid) AND m.idempotency_key = r.key "
    "AND m.message_id IS NULL AND m.direction = 'outbound' AND m.wamid IS NOT NULL OFFSET 0) AS e",
).columns(_TENANT_COLUMN, _m.idempotency_key, _m.wamid)
_WAMID_HOLDER = select(_m.id, _m.message_id, _m.idempotency_key).where(_m.tenant_id == _TENANT, _m.wamid == _WAMID)
_EARLY_ROW = select(_m.id).where(_m.tenant_id == _TENANT, _m.wamid == _WAMID, _m.message_id.is_(None))
_DELETE_ROW = delete(messages).where(_m.id == bindparam("row_id"))
_DELETE_ROWS = text("DELETE FROM messages WHERE id = ANY(CAST(:ids AS bigint[]))")
_MOVE_WAMIDS = text("UPDATE messages m SET wamid = r.wamid FROM unnest(CAST(:ids AS bigint[]), "
                    "CAST(:wamids AS text[])) AS r(id, wamid) WHERE m.id = r.id")
_HOLDERS = text(
    "SELECT r.tenant AS tenant, m.wamid, m.id, m.message_id FROM messages m "
    "JOIN unnest(CAST(:tenants AS text[]), CAST(:keys AS text[])) AS r(tenant, key) "
    "ON m.tenant_id = CAST(r.tenant AS uuid) AND m.wamid = r.key").columns(_TENANT_COLUMN, _m.wamid, _m.id,
                                                                           _m.message_id)
_SET_WAMID = update(messages).where(_m.id == bindparam("row_id")).values(wamid=bindparam("new_wamid"))
_COUNTS = select(message_statuses.c.id).where(
    message_statuses.c.tenant_id == _TENANT, message_statuses.c.wamid == _WAMID,
    message_statuses.c.status.in_(sorted(KNOWN_STATUSES))).limit(1)
_WAMID_ROW_COLUMNS = (("tenant_id", "uuid"), ("wamid", "text"), ("idempotency_key", "text"),
                      ("conversation_key", "text"), ("direction", "text"))
WAMID_ROWS = rows_insert("messages", _WAMID_ROW_COLUMNS, (
    "ON CONFLICT ON CONSTRAINT uq_messages_tenant_wamid DO UPDATE SET "
    "idempotency_key = coalesce(messages.idempotency_key, excluded.idempotency_key) "
    "WHERE messages.message_id IS NULL"))
_s = message_statuses.c
_HISTORIES = text(
    "SELECT r.tenant AS tenant, s.wamid, s.status, s.status_at, s.error_code, s.error_title, s.error_details "
    "FROM message_statuses s JOIN unnest(CAST(:tenants AS text[]), CAST(:keys AS text[])) AS r(tenant, key) "
    "ON s.tenant_id = CAST(r.tenant AS uuid) AND s.wamid = r.key").columns(
    _TENANT_COLUMN, _s.wamid, _s.status, _s.status_at, _s.error_code, _s.error_title, _s.error_details)
# A row's wamid moved by the batch's last adoptions (``_Batch.moves``) is written with its status: one new
# version of the row instead of two (every update of ``status`` writes all of the table's indexes).
_DERIVED = text(
    "UPDATE messages m SET wamid = coalesce(r.wamid, m.wamid), status = r.status, status_at = r.status_at, "
    "error_code = r.error_code, error_title = r.error_title, error_details = r.error_details "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:wamids AS text[]), CAST(:statuses AS text[]), "
    "CAST(:ats AS timestamptz[]), CAST(:codes AS integer[]), CAST(:titles AS text[]), CAST(:details AS text[])) "
    "AS r(id, wamid, status, status_at, error_code, error_title, error_details) WHERE m.id = r.id")
_APPLIED = text(
    "UPDATE message_statuses s SET applied = s.status IN (SELECT jsonb_array_elements_text(CAST(r.applied AS jsonb))) "
    "FROM unnest(CAST(:tenants AS text[]), CAST(:wamids AS text[]), CAST(:applied AS text[])) "
    "AS r(tenant, wamid, applied) WHERE s.tenant_id = CAST(r.tenant AS uuid) AND s.wamid = r.wamid")


def wamid_rows(rows: Sequence[tuple[str, str, str | None, str]]) -> dict[str, list[Any]]:
    """``WAMID_ROWS``' parameters for (tenant, wamid, idempotency key, conversation key) rows."""
    return columns([k for k, _ in _WAMID_ROW_COLUMNS], [(*row, "outbound") for row in rows])


@dataclass(frozen=True)
class _Derivation:
    """A row to derive again from its wamid's statuses, its verdict and the time it was queued."""

    tenant: str
    row_id: int
    wamid: str | None
    verdict: dict[str, Any] | None
    queued_at: datetime | None
    derived: tuple[Any, ...] | None = None  # what the row holds (status, status_at, error): not written again


def _derived(row: Any) -> tuple[Any, ...]:
    return (row.status, row.status_at, row.error_code, row.error_title, row.error_details)


@dataclass
class _Batch:
    """A batch's settling: the messages settled (first by id, then again for a status), the rows to derive, and
    the adoptions not written yet (see ``adopt``)."""

    settled: set[int] = field(default_factory=set)
    resettled: set[int] = field(default_factory=set)
    derivations: list[_Derivation] = field(default_factory=list)
    holders: dict[tuple[str, str], Any] = field(default_factory=dict)  # read for ``adopt``: (tenant, wamid) → row
    read: set[tuple[str, str]] = field(default_factory=set)  # the wamids ``holders`` knows (a row or none)
    touched: set[tuple[str, str]] = field(default_factory=set)  # wamids moved since ``holders`` was read
    deletes: list[int] = field(default_factory=list)
    moves: list[tuple[int, str]] = field(default_factory=list)
    # The early wamids of (tenant, idempotency key) pairs, read once for a batch's messages that have no verdict
    # yet; a pair is read again once the batch moved one of its wamids or gave it a row (``dirty``).
    reported: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    dirty: set[tuple[str, str]] = field(default_factory=set)

    async def read_reported(self, conn: AsyncConnection, pairs: Sequence[tuple[str, str]]) -> None:
        self.reported = {pair: set() for pair in pairs}
        for row in await conn.execute(_REPORTED_OF, _pairs(pairs)):
            self.reported[(row.tenant, row.idempotency_key)].add(row.wamid)

    async def reported_wamids(self, conn: AsyncConnection, tenant: str, key: str) -> set[str]:
        """The wamids statuses reported with ``key`` whose rows wait for their message (``_REPORTED``)."""
        known = self.reported.get((tenant, key))
        if known is not None and (tenant, key) not in self.dirty \
                and not any((tenant, wamid) in self.touched for wamid in known):
            return known
        await self.flush(conn)
        return set((await conn.execute(_REPORTED, {"tenant": tenant, "key": key})).scalars())

    async def adopt(self, conn: AsyncConnection, tenant: str, row_id: int, old: str | None,
                    wamid: str | None) -> bool:
        """Move ``wamid`` to our message's row ``row_id`` (its early row goes); False when another message
        holds it. A wamid whose holder was read and not moved since is decided on what was read and written with
        the others (``flush``); any other, after a flush, as the database says."""
        if wamid is None or (tenant, wamid) not in self.read or (tenant, wamid) in self.touched:
            await self.flush(conn)
            adopted = await _adopt(conn, tenant, row_id, wamid)
        else:
            holder = self.holders.get((tenant, wamid))
            if holder is not None and holder.message_id is not None:
                log.warning("wamid %s of message row %s already belongs to message %s", wamid, row_id,
                            holder.message_id)
                return False
            if holder is not None:
                self.deletes.append(holder.id)
            self.moves.append((row_id, wamid))
            adopted = True
        if adopted:
            self.touched.update((tenant, w) for w in (wamid, old) if w is not None)
        return adopted

    async def flush(self, conn: AsyncConnection, *, moves: bool = True) -> None:
        """Write the adoptions decided (the early rows deleted first, then the wamids moved); ``moves=False``
        leaves the moves to ``_derive`` (nothing reads a row by its wamid before it)."""
        if self.deletes:
            await conn.execute(_DELETE_ROWS, {"ids": self.deletes})
        if self.moves and moves:
            await conn.execute(_MOVE_WAMIDS, columns(("ids", "wamids"), self.moves))
            self.moves = []
        self.deletes = []


async def settle(conn: AsyncConnection, message_ids: Iterable[tuple[str, str]],
                 wamids: Iterable[tuple[str, str, str | None]], rows: Iterable[tuple[str, int, str]]) -> None:
    """Settle the messages of (tenant, message id) pairs, then those of (tenant, wamid, idempotency key) triples
    of statuses, then derive these and the (tenant, row id, wamid) rows."""
    batch = _Batch()
    ids = list(dict.fromkeys(message_ids))
    triples = list(dict.fromkeys(wamids))
    if ids:
        found = {(r.tenant, r.message_id): r for r in await conn.execute(_OURS_BY_IDS, _pairs(ids))}
        named = {(r.tenant, r.result["wamid"]): None for r in found.values() if r.result and r.result.get("wamid")}
        if named:  # who holds the wamids the results name, read once for them all
            batch.holders = {(r.tenant, r.wamid): r for r in await conn.execute(_HOLDERS, _pairs(named))}
            batch.read = set(named)
        unsent = list(dict.fromkeys((r.tenant, r.idempotency_key) for r in found.values()
                                    if r.idempotency_key is not None and not (r.result and r.result.get("wamid"))))
        if unsent:  # the early wamids of the messages without a verdict's wamid, read once for them all
            await batch.read_reported(conn, unsent)
        for tenant, message_id in ids:
            await _settle(conn, batch, tenant, found.get((tenant, message_id)), None)
        await batch.flush(conn, moves=bool(triples))  # the statuses' settling reads rows by wamid
        batch.holders, batch.read, batch.reported = {}, set(), {}  # what follows reads the database
    if triples:
        # Read once for them all: a message's row changes only when it is settled (it is read again after that).
        holders = {(r.tenant, r.wamid): r for r in await conn.execute(
            _OURS_BY_WAMIDS, _pairs(dict.fromkeys((t, w) for t, w, _ in triples)))}
        for tenant, wamid, key in triples:
            main = holders.get((tenant, wamid))
            if main is None or main.id in batch.resettled:
                main = await _message(conn, tenant, wamid, key)
            if main is not None and main.id in batch.settled and main.wamid == wamid:
                continue  # settled after all of the batch's facts, and it still holds the wamid
            await _settle(conn, batch, tenant, main, wamid)
            if main is not None:
                batch.resettled.add(main.id)
    batch.derivations += [_Derivation(tenant, row_id, wamid, None, None) for tenant, row_id, wamid in rows]
    await _derive(conn, batch.derivations, batch.moves)


def _pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    listed = list(pairs)
    return {"tenants": [t for t, _ in listed], "keys": [k for _, k in listed]}


async def _settle(conn: AsyncConnection, batch: _Batch, tenant: str, main: Any, wamid: str | None) -> None:
    """Give our message ``main`` (if any) its wamid, and the rows of other wamids (``wamid``'s) theirs."""
    others = {wamid} if wamid else set()
    if main is not None:
        batch.settled.add(main.id)
        verdict_wamid = main.result.get("wamid") if main.result else None
        reported = {main.wamid} if main.wamid else set()
        if verdict_wamid is None and main.idempotency_key is not None:
            reported |= await batch.reported_wamids(conn, tenant, main.idempotency_key)
        current = message_wamid(verdict_wamid, reported)
        if current != main.wamid and not await batch.adopt(conn, tenant, main.id, main.wamid, current):
            current = main.wamid
        elif current != main.wamid and main.wamid is not None and await _counts(conn, tenant, main.wamid):
            # A copy it had adopted is not its own after all: it keeps its statuses in a row of its own.
            await batch.flush(conn)
            await conn.execute(WAMID_ROWS, wamid_rows([(tenant, main.wamid, main.idempotency_key,
                                                        main.conversation_key)]))
            if main.idempotency_key is not None:
                batch.dirty.add((tenant, main.idempotency_key))
            others.add(main.wamid)
        others.discard(current)
        batch.derivations.append(_Derivation(tenant, main.id, current, main.result, main.sent_at, _derived(main)))
    if others:
        await batch.flush(conn)
    for other in sorted(others):
        row_id = (await conn.execute(_EARLY_ROW, {"tenant": tenant, "wamid_of": other})).scalar()
        if row_id is not None:
            batch.derivations.append(_Derivation(tenant, row_id, other, None, None))


async def _message(conn: AsyncConnection, tenant: str, wamid: str, key: str | None) -> Any:
    """Our outbound message a status is about: by its wamid, else by its idempotency key."""
    row = (await conn.execute(_OURS_BY_WAMID, {"tenant": tenant, "wamid_of": wamid})).first()
    if row is None and key is not None:
        row = (await conn.execute(_OURS_BY_KEY, {"tenant": tenant, "key": key})).first()
    return row


async def _adopt(conn: AsyncConnection, tenant: str, row_id: int, wamid: str | None) -> bool:
    """Move ``wamid`` to our message (its early row goes); False when another message holds it."""
    if wamid is not None:
        holder = (await conn.execute(_WAMID_HOLDER, {"tenant": tenant, "wamid_of": wamid})).first()
        if holder is not None and holder.message_id is not None:
            log.warning("wamid %s of message row %s already belongs to message %s", wamid, row_id, holder.message_id)
            return False
        if holder is not None:
            await conn.execute(_DELETE_ROW, {"row_id": holder.id})
    await conn.execute(_SET_WAMID, {"row_id": row_id, "new_wamid": wamid})
    return True


async def _counts(conn: AsyncConnection, tenant: str, wamid: str) -> bool:
    """Whether ``wamid`` has a status that can become a message's status."""
    return (await conn.execute(_COUNTS, {"tenant": tenant, "wamid_of": wamid})).first() is not None


async def _derive(conn: AsyncConnection, derivations: Sequence[_Derivation],
                  moves: Sequence[tuple[int, str]] = ()) -> None:
    """Status, status_at and error of each row (and its history's ``applied``) from its facts alone; of two
    derivations of one row (or one history), the later stands. ``moves`` (row id, wamid) not written yet are
    written with their row's status (alone for a row with nothing to derive)."""
    wamids = {(d.tenant, d.wamid): None for d in derivations if d.wamid is not None}
    histories: dict[tuple[str, str], list[Fact]] = {}
    if wamids:
        for r in await conn.execute(_HISTORIES, _pairs(wamids)):
            histories.setdefault((r.tenant, r.wamid), []).append(
                Fact(r.status, r.status_at, r.error_code, r.error_title, r.error_details))
    rows: dict[int, tuple[Any, ...]] = {}
    moved = dict(moves)
    applied: dict[tuple[str, str], str] = {}
    for d in derivations:
        history = histories.get((d.tenant, d.wamid), []) if d.wamid is not None else []
        facts = list(history)
        if d.verdict is not None:
            facts.append(verdict_fact(d.verdict, meta_reported=bool(history)))
        if not facts and d.queued_at is None:
            continue  # nothing to derive from (statuses are never removed, so nothing was derived before either)
        merged = merge(facts)
        status, at = merged.status, merged.at
        if status is None and d.queued_at is not None:
            status, at = "queued", d.queued_at
        rows.pop(d.row_id, None)  # the later derivation stands, in its place
        derived = (status, at, merged.error_code, merged.error_title, merged.error_details)
        if derived != d.derived:  # a row that holds it already is not written again (a queued one, say)
            rows[d.row_id] = (d.row_id, moved.get(d.row_id), *derived)
        if history and d.wamid is not None:
            applied.pop((d.tenant, d.wamid), None)
            applied[(d.tenant, d.wamid)] = json_text(sorted(merged.applied)) or "[]"
    alone = [(row_id, wamid) for row_id, wamid in moved.items() if row_id not in rows]
    if alone:
        await conn.execute(_MOVE_WAMIDS, columns(("ids", "wamids"), alone))
    if rows:
        await conn.execute(_DERIVED, columns(("ids", "wamids", "statuses", "ats", "codes", "titles", "details"),
                                             list(rows.values())))
    if applied:
        await conn.execute(_APPLIED, {"tenants": [t for t, _ in applied], "wamids": [w for _, w in applied],
                                      "applied": list(applied.values())})
