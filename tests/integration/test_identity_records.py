"""The router's durable identity records in PostgreSQL: first writer wins, and every answer names the winner."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from streams.identities import PostgresIdentities
from tests.integration.helpers import TenantFactory, fresh_id


async def test_a_record_names_what_was_recorded_first_and_inserts_the_rest(
        db: AsyncEngine, tenant_factory: TenantFactory) -> None:
    tenant = (await tenant_factory("identity records")).tenant_id
    book = PostgresIdentities(db)
    phone, bsuid = fresh_id(), f"US.{fresh_id()}"
    assert await book.record({(tenant, bsuid): bsuid}) == {(tenant, bsuid): bsuid}
    assert await book.record({(tenant, bsuid): phone, (tenant, phone): bsuid}) == {
        (tenant, bsuid): bsuid, (tenant, phone): bsuid}  # the BSUID's own record stays; the number's is new
    assert await book.load([(tenant, phone), (tenant, bsuid), (tenant, "unknown")]) == {
        (tenant, bsuid): bsuid, (tenant, phone): bsuid}


async def test_routers_recording_one_person_at_once_never_disagree(db: AsyncEngine,
                                                                   tenant_factory: TenantFactory) -> None:
    tenant = (await tenant_factory("identity race")).tenant_id
    books = [PostgresIdentities(db) for _ in range(4)]
    keys = [(tenant, fresh_id()) for _ in range(20)]
    answers = await asyncio.gather(*(book.record({key: f"{key[1]}-by-{i}" for key in keys})
                                     for i, book in enumerate(books)))
    stored = await books[0].load(keys)
    assert set(stored) == set(keys)  # every key recorded once
    for answer in answers:  # a key is missing from an answer only when another router was inserting it then
        assert all(answer[k] == stored[k] for k in answer), answer
    assert any(len(answer) == len(keys) for answer in answers)  # whoever inserted first saw all its rows
