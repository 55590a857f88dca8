"""The projector's per-message lookups stay index lookups on their keys as ``messages`` grows from empty.

asyncpg prepares each statement, and PostgreSQL switches a prepared statement to a generic plan after five runs,
planned with the table as it is then: in a new deployment, an almost empty ``messages``, where every index costs
about the same. A plan that matches only the tenant is kept as the table grows, and every later call scans the
tenant's messages: the lookup of a message's early rows by idempotency key took 1.7 ms a call at 20,000
messages that way, 80 % of PostgreSQL's time in a campaign, until migration 0023 gave it an index of its own.
Each case plans a lookup generically on a copy of ``messages`` (its indexes included) holding ``rows`` rows,
not analysed, and checks that the index condition holds every one of the lookup's key columns. (The wamid
lookups are not planned on an empty table: there any of the tenant's indexes may win, and they are right
from a few hundred rows on, or once the table is analysed.) The deliverer's look for its next due attempt is
planned the same way on a copy of ``webhook_deliveries``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from projector import settle

TENANT = "'00000000-0000-0000-0000-000000000001'"
ROWS = ("INSERT INTO plan_check.messages (tenant_id, message_id, idempotency_key, conversation_key, direction, "
        "sent_at, wamid) SELECT CAST({tenant} AS uuid), 'm' || i, 'k' || i, 'c', 'outbound', now(), 'w' || i "
        "FROM generate_series(1, {rows}) AS i")
# (what, statement, its parameters as SQL literals in order, the columns its index condition must hold, rows)
LOOKUPS: list[tuple[str, Any, list[str], set[str], int]] = [
    ("early wamids of a key, empty", settle._REPORTED, [TENANT, "'campaign:c:1555'", "'outbound'"],
     {"tenant_id", "idempotency_key"}, 0),
    ("early wamids of a key, 5000 rows", settle._REPORTED, [TENANT, "'k17'", "'outbound'"],
     {"tenant_id", "idempotency_key"}, 5000),
    ("early wamids of a batch's keys, 5000 rows", settle._REPORTED_OF, [f"ARRAY[{TENANT}]", "ARRAY['k17', 'k18']"],
     {"tenant_id", "idempotency_key"}, 5000),
    ("holder of a wamid, 5000 rows", settle._WAMID_HOLDER, [TENANT, "'w17'"], {"tenant_id", "wamid"}, 5000),
    ("our message by wamid, 5000 rows", settle._OURS_BY_WAMID, [TENANT, "'w17'"], {"tenant_id", "wamid"}, 5000),
    ("our messages of a batch's ids, 5000 rows", settle._OURS_BY_IDS, [f"ARRAY[{TENANT}]", "ARRAY['m17', 'm18']"],
     {"tenant_id", "message_id"}, 5000),
    ("our messages of a batch's wamids, 5000 rows", settle._OURS_BY_WAMIDS,
     [f"ARRAY[{TENANT}]", "ARRAY['w17', 'w18']"], {"tenant_id", "wamid"}, 5000),
    ("holders of a batch's wamids, 5000 rows", settle._HOLDERS, [f"ARRAY[{TENANT}]", "ARRAY['w17', 'w18']"],
     {"tenant_id", "wamid"}, 5000),
]


def index_conditions(plan: list[str]) -> set[str]:
    """The columns compared in the plan's index conditions."""
    return {column for line in plan if "Index Cond:" in line for column in re.findall(r"\((\w+) = ", line)}


@pytest.mark.parametrize(("statement", "args", "keys", "rows"), [case[1:] for case in LOOKUPS],
                         ids=[case[0] for case in LOOKUPS])
async def test_the_generic_plan_looks_up_by_every_key(db: AsyncEngine, statement: Any, args: list[str],
                                                      keys: set[str], rows: int) -> None:
    sql = str(statement.compile(dialect=postgresql.asyncpg.dialect()))
    async with db.connect() as conn:
        pg = (await conn.get_raw_connection()).driver_connection
        assert pg is not None
        scratch = pg.transaction()  # the copy goes with its rollback
        await scratch.start()
        try:
            await pg.execute("CREATE SCHEMA plan_check; "
                             "CREATE TABLE plan_check.messages (LIKE public.messages INCLUDING ALL); "
                             + ROWS.format(tenant=TENANT, rows=rows) + "; "
                             "SET LOCAL search_path = plan_check, public; "
                             "SET LOCAL plan_cache_mode = force_generic_plan")
            await pg.execute(f"PREPARE lookup AS {sql}")
            plan = [row[0] for row in await pg.fetch(f"EXPLAIN EXECUTE lookup({', '.join(args)})")]
        finally:
            await scratch.rollback()
            await conn.invalidate()  # the prepared ``lookup`` goes with the connection, whatever failed
    assert index_conditions(plan) >= keys, "\n".join(plan)


DELIVERIES = ("INSERT INTO plan_check.webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, "
              "ordering_key, origin, state, next_attempt_at) SELECT gen_random_uuid(), CAST({tenant} AS uuid), "
              "gen_random_uuid(), 'e' || i, 'message.received', 'c', 'live', "
              "CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'delivered' END, now() + i * interval '1 s' "
              "FROM generate_series(1, 5000) AS i")


async def test_the_deliverers_next_due_attempt_is_one_index_step(db: AsyncEngine) -> None:
    """The scheduler's ``NEXT_DUE`` reads pending deliveries through an index that holds only them, never the
    delivery log, which keeps a week of finished deliveries."""
    from deliverer.scheduler import NEXT_DUE

    async with db.connect() as conn:
        pg = (await conn.get_raw_connection()).driver_connection
        assert pg is not None
        scratch = pg.transaction()
        await scratch.start()
        try:
            await pg.execute("CREATE SCHEMA plan_check; CREATE TABLE plan_check.webhook_deliveries "
                             "(LIKE public.webhook_deliveries INCLUDING ALL); "
                             + DELIVERIES.format(tenant=TENANT) + "; "
                             "SET LOCAL search_path = plan_check, public; "
                             "SET LOCAL plan_cache_mode = force_generic_plan")
            await pg.execute(f"PREPARE next_due AS {NEXT_DUE.text}")
            plan = [row[0] for row in await pg.fetch("EXPLAIN EXECUTE next_due")]
            pending_only = {row[0] for row in await pg.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'plan_check' "
                "AND indexdef LIKE '%WHERE (state = ''pending''::text)'")}
        finally:
            await scratch.rollback()
            await conn.invalidate()
    scans = [line for line in plan if " on webhook_deliveries" in line]
    used = [m[1] if (m := re.search(r"Index (?:Only )?Scan using (\w+) on webhook_deliveries", line)) else None
            for line in scans]
    assert pending_only and used and all(name in pending_only for name in used), "\n".join(plan)
