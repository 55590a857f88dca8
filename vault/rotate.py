"""Re-encrypt every stored token under the vault's newest key.

Run it with the old and the new key loaded (and the new key deployed to every dispatcher
first, so nothing new is written under the old one). Each batch is its own short transaction
that takes ``FOR UPDATE SKIP LOCKED``: senders only read (never blocked), a signup writing a
row is skipped rather than waited for, and several rotators can run at once. Rows skipped
because they were locked are picked up at the end by waiting for their lock. Drop the old key
only after ``rotate`` returned without error; running it again then returns 0.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.tables import whatsapp_accounts as accounts
from vault.cipher import Vault
from vault.exceptions import DecryptionError, RotationIncompleteError


async def rotate(engine: AsyncEngine, vault: Vault, *, batch: int = 100) -> int:
    """Move every token not under ``vault.current_key_id`` to it; return how many rows changed."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    old_ids = [key_id for key_id in vault.key_ids if key_id != vault.current_key_id]
    rotated = 0
    for skip_locked in (True, False):
        while old_ids:
            async with engine.begin() as conn:
                moved = await _rotate_batch(conn, vault, old_ids, batch=batch, skip_locked=skip_locked)
            rotated += moved
            if moved == 0:
                break
    await _check_unloaded(engine, vault, rotated)
    return rotated


async def _rotate_batch(conn: AsyncConnection, vault: Vault, old_ids: list[str], *, batch: int,
                        skip_locked: bool) -> int:
    """Lock up to ``batch`` rows under an old key, re-encrypt them, and update them."""
    query = (select(accounts.c.waba_id, accounts.c.token_ciphertext, accounts.c.token_key_id)
             .where(accounts.c.token_ciphertext.is_not(None), accounts.c.token_key_id.in_(old_ids))
             .order_by(accounts.c.waba_id).limit(batch).with_for_update(skip_locked=skip_locked))
    changes = []
    for row in (await conn.execute(query)).all():
        try:
            token = vault.decrypt(bytes(row.token_ciphertext), row.token_key_id, aad=row.waba_id)
        except DecryptionError as exc:
            raise DecryptionError(f"token of WhatsApp account {row.waba_id} does not decrypt; "
                                  "rotation stopped") from exc
        ciphertext, key_id = vault.encrypt(token, aad=row.waba_id)
        changes.append({"row_waba_id": row.waba_id, "new_ciphertext": ciphertext, "new_key_id": key_id})
    if changes:
        # updated_at is left alone: re-encryption does not change the account.
        await conn.execute(
            update(accounts).where(accounts.c.waba_id == bindparam("row_waba_id"))
            .values(token_ciphertext=bindparam("new_ciphertext"), token_key_id=bindparam("new_key_id")),
            changes,
        )
    return len(changes)


async def _check_unloaded(engine: AsyncEngine, vault: Vault, rotated: int) -> None:
    """Refuse to report success while some rows are under keys this vault cannot read."""
    query = (select(accounts.c.token_key_id, func.count())
             .where(accounts.c.token_ciphertext.is_not(None),
                    accounts.c.token_key_id.is_(None) | accounts.c.token_key_id.not_in(vault.key_ids))
             .group_by(accounts.c.token_key_id))
    async with engine.connect() as conn:
        stranded = (await conn.execute(query)).all()
    if stranded:
        raise RotationIncompleteError(rotated=rotated, remaining=sum(count for _, count in stranded),
                                      key_ids=tuple(sorted(str(key_id) for key_id, _ in stranded)))
