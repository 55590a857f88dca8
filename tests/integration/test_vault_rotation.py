"""The token vault against a real PostgreSQL: storage, tenant ownership and key rotation.

Starts only PostgreSQL (not the session stack of ``conftest.py``), so it runs on its own.
Every test leaves its rows under key B, the newest key, so the tests do not depend on order.
"""

from __future__ import annotations

import asyncio
import base64
import random
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.migrate import upgrade
from db.tables import tenants, whatsapp_accounts
from stack.services import start_postgres
from vault.cipher import Vault, generate_key_spec
from vault.exceptions import (
    AccountNotFoundError,
    AccountOwnershipError,
    DecryptionError,
    RotationIncompleteError,
)
from vault.rotate import rotate
from vault.store import load_token, set_status, store_token

SPEC_A = generate_key_spec("key-a")
SPEC_B = generate_key_spec("key-b")


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A PostgreSQL of this module's own, migrated to head."""
    root = Path(tempfile.mkdtemp(prefix="aerostic-vault-"))
    service = start_postgres(root / "logs", root / "pg")
    try:
        with ThreadPoolExecutor(1) as pool:  # alembic's env runs its own event loop
            pool.submit(upgrade, service.url).result()
        yield service.url
    finally:
        service.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def vault_ab() -> Vault:
    return Vault.from_spec(f"{SPEC_A},{SPEC_B}")


async def new_tenant(engine: AsyncEngine, name: str = "vault test") -> str:
    tenant_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(insert(tenants).values(id=tenant_id, name=name))
    return tenant_id


def new_waba() -> str:
    return str(random.randrange(10**14, 10**15))


def new_token() -> str:
    return "EAAG" + base64.urlsafe_b64encode(random.randbytes(48)).decode().rstrip("=")


async def store(engine: AsyncEngine, vault: Vault, *, tenant_id: str, waba_id: str, token: str,
                business_id: str | None = None, name: str | None = None, tier_limit: int | None = None) -> None:
    async with engine.begin() as conn:
        await store_token(conn, vault, tenant_id=tenant_id, waba_id=waba_id, token=token, business_id=business_id,
                          name=name, tier_limit=tier_limit)


async def load(engine: AsyncEngine, vault: Vault, waba_id: str, tenant_id: str | None = None) -> str:
    async with engine.connect() as conn:
        return await load_token(conn, vault, waba_id=waba_id, tenant_id=tenant_id)


async def key_ids(engine: AsyncEngine, wabas: list[str]) -> set[str]:
    async with engine.connect() as conn:
        query = select(whatsapp_accounts.c.token_key_id).where(whatsapp_accounts.c.waba_id.in_(wabas))
        return set((await conn.execute(query)).scalars())


async def test_rotation_moves_every_row_then_old_key_can_go(engine: AsyncEngine, vault_ab: Vault) -> None:
    vault_a = Vault.from_spec(SPEC_A)
    tenant_id = await new_tenant(engine)
    tokens = {new_waba(): new_token() for _ in range(3)}
    for waba_id, token in tokens.items():
        await store(engine, vault_a, tenant_id=tenant_id, waba_id=waba_id, token=token)
    assert await key_ids(engine, list(tokens)) == {"key-a"}

    assert await rotate(engine, vault_ab, batch=2) == 3
    assert await key_ids(engine, list(tokens)) == {"key-b"}
    for waba_id, token in tokens.items():
        assert await load(engine, vault_ab, waba_id) == token
    assert await rotate(engine, vault_ab) == 0

    vault_b = Vault.from_spec(SPEC_B)
    for waba_id, token in tokens.items():
        assert await load(engine, vault_b, waba_id) == token


async def test_rotation_skips_locked_rows_then_waits_for_them(engine: AsyncEngine, vault_ab: Vault) -> None:
    vault_a = Vault.from_spec(SPEC_A)
    tenant_id = await new_tenant(engine)
    tokens = {new_waba(): new_token() for _ in range(4)}
    for waba_id, token in tokens.items():
        await store(engine, vault_a, tenant_id=tenant_id, waba_id=waba_id, token=token)
    locked, *others = sorted(tokens)

    async with engine.connect() as writer:
        await writer.execute(select(whatsapp_accounts).where(whatsapp_accounts.c.waba_id == locked)
                             .with_for_update())
        task = asyncio.create_task(rotate(engine, vault_ab, batch=1))
        for _ in range(200):
            if await key_ids(engine, others) == {"key-b"}:
                break
            await asyncio.sleep(0.05)
        assert await key_ids(engine, others) == {"key-b"}
        assert not task.done()
        # Senders keep reading while a row is locked and rotation waits for it.
        assert await load(engine, vault_ab, locked) == tokens[locked]
        await writer.commit()
    assert await asyncio.wait_for(task, timeout=30) == 4
    assert await key_ids(engine, list(tokens)) == {"key-b"}
    for waba_id, token in tokens.items():
        assert await load(engine, vault_ab, waba_id) == token


async def test_rotation_reports_rows_under_unloaded_keys(engine: AsyncEngine, vault_ab: Vault) -> None:
    tenant_id = await new_tenant(engine)
    waba_id = new_waba()
    await store(engine, Vault.from_spec(generate_key_spec("key-lost")), tenant_id=tenant_id, waba_id=waba_id,
                token=new_token())
    try:
        with pytest.raises(RotationIncompleteError) as info:
            await rotate(engine, vault_ab)
        assert (info.value.remaining, info.value.key_ids) == (1, ("key-lost",))
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(whatsapp_accounts).where(whatsapp_accounts.c.waba_id == waba_id))


async def test_other_tenant_cannot_overwrite(engine: AsyncEngine, vault_ab: Vault) -> None:
    tenant_x, tenant_y = await new_tenant(engine, "x"), await new_tenant(engine, "y")
    waba_id, token = new_waba(), new_token()
    await store(engine, vault_ab, tenant_id=tenant_x, waba_id=waba_id, token=token, name="X's WABA")
    with pytest.raises(AccountOwnershipError) as info:
        await store(engine, vault_ab, tenant_id=tenant_y, waba_id=waba_id, token=new_token(), name="stolen")
    assert tenant_x not in str(info.value)
    assert await load(engine, vault_ab, waba_id) == token
    assert await load(engine, vault_ab, waba_id, tenant_id=tenant_x) == token
    with pytest.raises(AccountNotFoundError):
        await load(engine, vault_ab, waba_id, tenant_id=tenant_y)
    async with engine.connect() as conn:
        row = (await conn.execute(select(whatsapp_accounts).where(whatsapp_accounts.c.waba_id == waba_id))).one()
    assert (row.tenant_id, row.name) == (tenant_x, "X's WABA")


async def test_reconnect_replaces_token_and_keeps_the_rest(engine: AsyncEngine, vault_ab: Vault) -> None:
    tenant_id, waba_id = await new_tenant(engine), new_waba()
    await store(engine, vault_ab, tenant_id=tenant_id, waba_id=waba_id, token=new_token(),
                business_id="5550001", name="Shop", tier_limit=250)
    async with engine.begin() as conn:
        await set_status(conn, tenant_id=tenant_id, waba_id=waba_id, status="needs_reauth",
                         reason="token expired (190)")
    query = select(whatsapp_accounts).where(whatsapp_accounts.c.waba_id == waba_id)
    async with engine.connect() as conn:
        before = (await conn.execute(query)).one()
    assert (before.status, before.status_reason) == ("needs_reauth", "token expired (190)")

    fresh = new_token()
    await store(engine, vault_ab, tenant_id=tenant_id, waba_id=waba_id, token=fresh)
    async with engine.connect() as conn:
        after = (await conn.execute(query)).one()
    assert await load(engine, vault_ab, waba_id) == fresh
    assert (after.status, after.status_reason) == ("connected", None)
    assert (after.business_id, after.name, after.tier_limit) == ("5550001", "Shop", 250)
    assert after.connected_at == before.connected_at
    assert after.updated_at > before.updated_at


async def test_set_status_checks_account_tenant_and_value(engine: AsyncEngine, vault_ab: Vault) -> None:
    tenant_id, other, waba_id = await new_tenant(engine), await new_tenant(engine), new_waba()
    await store(engine, vault_ab, tenant_id=tenant_id, waba_id=waba_id, token=new_token())
    async with engine.connect() as conn:
        with pytest.raises(AccountNotFoundError):
            await set_status(conn, tenant_id=tenant_id, waba_id=new_waba(), status="disconnected", reason=None)
        with pytest.raises(AccountNotFoundError):  # another tenant's account is not found
            await set_status(conn, tenant_id=other, waba_id=waba_id, status="disconnected", reason=None)
        with pytest.raises(ValueError, match="paused"):
            await set_status(conn, tenant_id=tenant_id, waba_id=waba_id, status="paused", reason=None)


async def test_load_missing_account(engine: AsyncEngine, vault_ab: Vault) -> None:
    with pytest.raises(AccountNotFoundError):
        await load(engine, vault_ab, new_waba())


async def test_ciphertext_copied_to_another_row_does_not_decrypt(engine: AsyncEngine, vault_ab: Vault) -> None:
    tenant_id, first, second = await new_tenant(engine), new_waba(), new_waba()
    await store(engine, vault_ab, tenant_id=tenant_id, waba_id=first, token=new_token())
    await store(engine, vault_ab, tenant_id=tenant_id, waba_id=second, token=new_token())
    table = whatsapp_accounts
    async with engine.begin() as conn:
        copied = (await conn.execute(select(table.c.token_ciphertext).where(table.c.waba_id == first))).scalar()
        await conn.execute(update(table).where(table.c.waba_id == second).values(token_ciphertext=copied))
    with pytest.raises(DecryptionError):
        await load(engine, vault_ab, second)


async def test_plaintext_token_is_nowhere_in_the_table(engine: AsyncEngine, vault_ab: Vault) -> None:
    tenant_id, waba_id, token = await new_tenant(engine), new_waba(), new_token()
    await store(engine, vault_ab, tenant_id=tenant_id, waba_id=waba_id, token=token)
    async with engine.connect() as conn:
        dump = "\n".join((await conn.execute(text("SELECT t::text FROM whatsapp_accounts AS t"))).scalars())
        raw = b"".join((await conn.execute(select(whatsapp_accounts.c.token_ciphertext))).scalars())
    assert waba_id in dump
    for needle in (token, token.encode().hex(), token[4:24]):
        assert needle not in dump
    assert token.encode()[4:24] not in raw
    assert await load(engine, vault_ab, waba_id) == token
