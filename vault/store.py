"""Encrypted Meta tokens in ``whatsapp_accounts`` (writer: the dispatcher).

Every function runs inside the caller's connection and transaction; the caller commits. The
WABA id is the associated data of each ciphertext, so a token only decrypts in its own row.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import whatsapp_accounts as accounts
from vault.cipher import Vault
from vault.exceptions import AccountNotFoundError, AccountOwnershipError


class AccountStatus(StrEnum):
    """``whatsapp_accounts.status`` values."""

    CONNECTED = "connected"
    NEEDS_REAUTH = "needs_reauth"
    DISCONNECTED = "disconnected"


async def store_token(conn: AsyncConnection, vault: Vault, *, tenant_id: str, waba_id: str, token: str,
                      business_id: str | None = None, name: str | None = None,
                      tier_limit: int | None = None) -> None:
    """Insert or reconnect an account with a fresh ciphertext; refuse a WABA owned by another tenant.

    On reconnect the token is replaced and the status reset to connected; ``business_id``,
    ``name`` and ``tier_limit`` are kept when not given, as is ``connected_at``.
    """
    ciphertext, key_id = vault.encrypt(token, aad=waba_id)
    new = insert(accounts).values(
        waba_id=waba_id, tenant_id=tenant_id, business_id=business_id, name=name, tier_limit=tier_limit,
        token_ciphertext=ciphertext, token_key_id=key_id, status=AccountStatus.CONNECTED.value,
    )
    # One statement: the ownership check and the write cannot race with another tenant's signup.
    statement = new.on_conflict_do_update(
        index_elements=[accounts.c.waba_id],
        set_={
            "token_ciphertext": new.excluded.token_ciphertext,
            "token_key_id": new.excluded.token_key_id,
            "status": new.excluded.status,
            "status_reason": None,
            "updated_at": func.now(),
            "business_id": func.coalesce(new.excluded.business_id, accounts.c.business_id),
            "name": func.coalesce(new.excluded.name, accounts.c.name),
            "tier_limit": func.coalesce(new.excluded.tier_limit, accounts.c.tier_limit),
        },
        where=accounts.c.tenant_id == new.excluded.tenant_id,
    ).returning(accounts.c.waba_id)
    if (await conn.execute(statement)).first() is None:
        raise AccountOwnershipError(f"WhatsApp Business Account {waba_id} is connected to another tenant")


async def load_token(conn: AsyncConnection, vault: Vault, *, waba_id: str, tenant_id: str | None = None) -> str:
    """Decrypt the token of ``waba_id`` (also checked against ``tenant_id`` when given)."""
    query = select(accounts.c.token_ciphertext, accounts.c.token_key_id).where(accounts.c.waba_id == waba_id)
    if tenant_id is not None:
        query = query.where(accounts.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    if row is None:
        raise AccountNotFoundError(f"no WhatsApp account {waba_id}")
    if row.token_ciphertext is None or row.token_key_id is None:
        raise AccountNotFoundError(f"WhatsApp account {waba_id} holds no token")
    return vault.decrypt(bytes(row.token_ciphertext), row.token_key_id, aad=waba_id)


async def set_status(conn: AsyncConnection, *, tenant_id: str, waba_id: str, status: str,
                     reason: str | None) -> None:
    """Record the tenant's account status (connected, needs_reauth, disconnected) and why."""
    value = AccountStatus(status).value  # ValueError on an unknown status
    result = await conn.execute(
        update(accounts).where(accounts.c.waba_id == waba_id, accounts.c.tenant_id == tenant_id)
        .values(status=value, status_reason=reason, updated_at=func.now()).returning(accounts.c.waba_id))
    if result.first() is None:
        raise AccountNotFoundError(f"tenant {tenant_id} has no WhatsApp account {waba_id}")
