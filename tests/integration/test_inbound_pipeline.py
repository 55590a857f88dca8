"""Batching, duplicates and status merging through the real ingress, broker, router and projector."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from metasim import payloads
from tests.integration.helpers import Poster, TenantFactory, rows, scalar, wait_for

pytestmark = pytest.mark.usefixtures("pipeline_ready")


async def test_batched_post_gives_one_row_per_message_and_status(
        tenant_factory: TenantFactory, post: Poster, db: AsyncEngine) -> None:
    a, b = await tenant_factory("batch a"), await tenant_factory("batch b")
    entries = []
    expected_messages, expected_statuses = {a.tenant_id: 0, b.tenant_id: 0}, {a.tenant_id: 0, b.tenant_id: 0}
    for tenant in (a, b):
        changes = []
        for n in range(2):
            customer = f"1555000{n}{tenant.phone_number_id[-3:]}"
            messages = [payloads.text_message(customer, f"hello {i}") for i in range(2)]
            statuses = [payloads.status(payloads.new_wamid(), "delivered", customer) for _ in range(2)]
            changes.append(payloads.messages_change(tenant.phone_number_id,
                                                    contacts=[payloads.contact(customer, f"C{n}")],
                                                    messages=messages, statuses=statuses))
            expected_messages[tenant.tenant_id] += 2
            expected_statuses[tenant.tenant_id] += 2
        entries.append({"id": tenant.waba_id, "changes": changes})
    assert (await post({"object": "whatsapp_business_account", "entry": entries})).status_code == 200

    for tenant in (a, b):
        await wait_for(lambda t=tenant: _counts(db, t.tenant_id),  # type: ignore[misc]
                       what="batched rows")
        inbound, history = await _counts(db, tenant.tenant_id)
        assert inbound == expected_messages[tenant.tenant_id]
        assert history == expected_statuses[tenant.tenant_id]
    contacts = await rows(db, "SELECT wa_id, profile_name FROM contacts WHERE tenant_id = :t ORDER BY wa_id",
                          t=a.tenant_id)
    assert [c.profile_name for c in contacts] == ["C0", "C1"]


async def _counts(db: AsyncEngine, tenant_id: str) -> tuple[int, int] | None:
    inbound = await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND direction = 'inbound'",
                           t=tenant_id)
    history = await scalar(db, "SELECT count(*) FROM message_statuses WHERE tenant_id = :t", t=tenant_id)
    return (inbound, history) if inbound == 4 and history == 4 else None


async def test_redelivered_and_concurrent_duplicates_store_one_row(
        tenant_factory: TenantFactory, post: Poster, db: AsyncEngine) -> None:
    tenant = await tenant_factory("dupes")
    wamid = payloads.new_wamid()
    body = payloads.customer_text(tenant.phone_number_id, tenant.waba_id, "15557770000", "twice?", wamid=wamid)
    for _ in range(3):
        assert (await post(body)).status_code == 200
    results = await asyncio.gather(post(body), post(body))
    assert [r.status_code for r in results] == [200, 200]
    # A later, different message proves the duplicates were processed before it (same partition).
    marker = payloads.customer_text(tenant.phone_number_id, tenant.waba_id, "15557770000", "after")
    assert (await post(marker)).status_code == 200
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND text = 'after'",
                                  t=tenant.tenant_id), what="marker message")
    assert await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND wamid = :w",
                        t=tenant.tenant_id, w=wamid) == 1
    assert await scalar(db, "SELECT last_inbound_at IS NOT NULL FROM conversations WHERE tenant_id = :t",
                        t=tenant.tenant_id)


async def _post_statuses(post: Poster, tenant_phone: str, waba: str, wamid: str, sequence: list[tuple[str, int | None]],
                         recipient: str = "15553334444") -> None:
    start = int(time.time())
    for offset, (value, code) in enumerate(sequence):  # Meta's timestamps: one second apart, in this order
        body = payloads.status_update(tenant_phone, waba, wamid, value, recipient, error_code=code,
                                      error_title="Message undeliverable" if code else "", timestamp=start + offset)
        assert (await post(body)).status_code == 200


async def _history(db: AsyncEngine, tenant_id: str, wamid: str, count: int) -> list[str] | None:
    got = await rows(db, "SELECT status FROM message_statuses WHERE tenant_id = :t AND wamid = :w",
                     t=tenant_id, w=wamid)
    return sorted(r.status for r in got) if len(got) == count else None


async def test_out_of_order_statuses_never_go_backwards(
        tenant_factory: TenantFactory, post: Poster, db: AsyncEngine) -> None:
    tenant = await tenant_factory("statuses")
    wamid = payloads.new_wamid()
    await _post_statuses(post, tenant.phone_number_id, tenant.waba_id, wamid,
                         [("read", None), ("sent", None), ("delivered", None)])
    history = await wait_for(lambda: _history(db, tenant.tenant_id, wamid, 3), what="three history rows")
    assert history == ["delivered", "read", "sent"]
    assert await scalar(db, "SELECT status FROM messages WHERE tenant_id = :t AND wamid = :w",
                        t=tenant.tenant_id, w=wamid) == "read"


async def test_failed_after_sent_is_terminal_and_keeps_its_code(
        tenant_factory: TenantFactory, post: Poster, db: AsyncEngine) -> None:
    tenant = await tenant_factory("failed")
    wamid = payloads.new_wamid()
    await _post_statuses(post, tenant.phone_number_id, tenant.waba_id, wamid,
                         [("sent", None), ("failed", 131026), ("delivered", None), ("read", None)])
    await wait_for(lambda: _history(db, tenant.tenant_id, wamid, 4), what="four history rows")
    row = (await rows(db, "SELECT status, error_code, error_title FROM messages WHERE tenant_id = :t AND wamid = :w",
                      t=tenant.tenant_id, w=wamid))[0]
    assert (row.status, row.error_code, row.error_title) == ("failed", 131026, "Message undeliverable")


async def test_failed_after_read_stays_in_history_only(
        tenant_factory: TenantFactory, post: Poster, db: AsyncEngine) -> None:
    tenant = await tenant_factory("late failed")
    wamid = payloads.new_wamid()
    await _post_statuses(post, tenant.phone_number_id, tenant.waba_id, wamid, [("read", None), ("failed", 131026)])
    await wait_for(lambda: _history(db, tenant.tenant_id, wamid, 2), what="two history rows")
    row = (await rows(db, "SELECT status, error_code FROM messages WHERE tenant_id = :t AND wamid = :w",
                      t=tenant.tenant_id, w=wamid))[0]
    assert (row.status, row.error_code) == ("read", None)
    applied = await rows(db, "SELECT status, applied FROM message_statuses WHERE tenant_id = :t AND wamid = :w "
                             "ORDER BY status", t=tenant.tenant_id, w=wamid)
    assert [(r.status, r.applied) for r in applied] == [("failed", False), ("read", True)]


async def test_tenants_do_not_see_each_others_rows(
        tenant_factory: TenantFactory, post: Poster, db: AsyncEngine) -> None:
    a, b = await tenant_factory("iso a"), await tenant_factory("iso b")
    wamid = payloads.new_wamid()
    body = payloads.customer_text(a.phone_number_id, a.waba_id, "15559990000", "for a only", wamid=wamid)
    assert (await post(body)).status_code == 200
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE wamid = :w", w=wamid), what="row")
    owners = await rows(db, "SELECT tenant_id::text AS owner FROM messages WHERE wamid = :w", w=wamid)
    assert [o.owner for o in owners] == [a.tenant_id]
    assert await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t", t=b.tenant_id) == 0
