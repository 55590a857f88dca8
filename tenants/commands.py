"""Tenants and their numbers, before Embedded Signup exists: create, attach, and publish.

``attach_number`` writes the number's owner to PostgreSQL, publishes it to the compacted
``tenants.directory`` topic (exactly what Embedded Signup will publish later), then replays
whatever arrived for that number before it had an owner.
"""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import create_async_engine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from db.tables import phone_numbers, tenants
from schemas.catalogue import TENANTS_DIRECTORY
from schemas.events import DirectoryEntry
from tenants.replay import replay_unroutable
from vault.cipher import Vault
from vault.store import store_token


async def create_tenant(settings: CoreSettings, name: str) -> str:
    """Insert a tenant; return its id."""
    tenant_id = str(uuid.uuid4())
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            await conn.execute(tenants.insert().values(id=tenant_id, name=name))
    finally:
        await engine.dispose()
    return tenant_id


async def attach_number(settings: CoreSettings, producer: AsyncProducer, *, tenant_id: str, phone_number_id: str,
                        waba_id: str | None = None, display_phone_number: str | None = None,
                        throughput_mps: int = 80, token: str | None = None, vault: Vault | None = None,
                        business_id: str | None = None, tier_limit: int | None = None) -> int:
    """Give ``phone_number_id`` to ``tenant_id``; return how many held events were replayed.

    With ``token`` (and the ``vault`` to encrypt it) the WABA's account is stored too, so the
    dispatcher can send from the number; Embedded Signup does the same after its exchange.
    """
    if token is not None and (vault is None or waba_id is None):
        raise ValueError("storing a token needs the vault keys and the WABA id")
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            found = await conn.execute(tenants.select().where(tenants.c.id == tenant_id))
            if found.first() is None:
                raise LookupError(f"no tenant {tenant_id}")
            if token is not None and vault is not None and waba_id is not None:
                await store_token(conn, vault, tenant_id=tenant_id, waba_id=waba_id, token=token,
                                  business_id=business_id, tier_limit=tier_limit)
            stmt = insert(phone_numbers).values(phone_number_id=phone_number_id, tenant_id=tenant_id,
                                                waba_id=waba_id, display_phone_number=display_phone_number,
                                                throughput_mps=throughput_mps)
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=["phone_number_id"],
                set_={"tenant_id": tenant_id, "waba_id": waba_id, "throughput_mps": throughput_mps,
                      "display_phone_number": display_phone_number, "status": "connected"}))
    finally:
        await engine.dispose()
    await publish_directory_entry(settings, producer, DirectoryEntry.owned(
        phone_number_id, tenant_id, waba_id=waba_id, display_phone_number=display_phone_number))
    keys = {phone_number_id} | ({waba_id} if waba_id else set())
    return await replay_unroutable(settings, producer, keys, tenant_id=tenant_id)


async def publish_directory_entry(settings: CoreSettings, producer: AsyncProducer, entry: DirectoryEntry) -> None:
    """Append ``entry`` to ``tenants.directory`` and wait for the broker's acknowledgement."""
    await producer.send(TENANTS_DIRECTORY.full_name(settings.topic_prefix), entry.encode(), entry.phone_number_id)
