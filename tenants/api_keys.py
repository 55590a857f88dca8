"""Tenant API keys: create, authenticate, list and revoke.

A key reads ``aer_<prefix>_<secret>``: ``prefix`` is 8 hex characters kept in clear so people can
tell their keys apart, ``secret`` is 43 URL-safe characters (256 bits from ``secrets``). Only
``sha256(key)`` is stored. A fast hash is the right tool here: slow password hashes (bcrypt,
argon2) exist to make guessing low-entropy passwords expensive, but nobody can enumerate a 256-bit
secret, so a slow hash would only cost CPU on every request. The hash column is unique, so a key
is found with one indexed lookup, and the full key is shown to its owner once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from config.settings import CoreSettings
from db.keyset import Position, window
from db.tables import api_keys, tenants

KEY_PREFIX = "aer_"
PREFIX_HEX_BYTES = 4  # 8 hex characters
SECRET_BYTES = 32  # token_urlsafe(32) is exactly 43 characters
KEY_PATTERN = re.compile(r"aer_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is written at most this often per key
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """Who a valid key speaks for; carries no secret and no hash."""

    key_id: str
    tenant_id: str
    name: str
    prefix: str


@dataclass(frozen=True)
class ApiKeyInfo:
    """One key as its tenant may see it (never the hash)."""

    key_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def generate_key() -> tuple[str, str]:
    """A fresh ``(prefix, key)`` pair."""
    prefix = secrets.token_hex(PREFIX_HEX_BYTES)
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def hash_key(key: str) -> bytes:
    """The stored digest of ``key``."""
    return hashlib.sha256(key.encode()).digest()


def key_prefix(key: str) -> str | None:
    """The 8-character prefix of a well-formed key, or None when ``key`` cannot be one."""
    if not KEY_PATTERN.fullmatch(key):
        return None
    return key[len(KEY_PREFIX):len(KEY_PREFIX) + 2 * PREFIX_HEX_BYTES]


async def create_api_key(conn: AsyncConnection, *, tenant_id: str, name: str) -> tuple[str, str]:
    """Create a key for ``tenant_id``; return ``(key_id, key)``. The key is not kept anywhere."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a key name needs 1 to {MAX_NAME_LENGTH} characters")
    key_id = str(uuid.uuid4())
    prefix, key = generate_key()
    await conn.execute(api_keys.insert().values(id=key_id, tenant_id=tenant_id, name=name, prefix=prefix,
                                                key_hash=hash_key(key)))
    return key_id, key


async def create_key_for(settings: CoreSettings, *, tenant_id: str, name: str) -> tuple[str, str]:
    """Operator command: create a key for an existing tenant; return ``(key_id, key)``."""
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            if (await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is None:
                raise LookupError(f"no tenant {tenant_id}")
            return await create_api_key(conn, tenant_id=tenant_id, name=name)
    finally:
        await engine.dispose()


async def authenticate(conn: AsyncConnection, key: str) -> ApiKeyPrincipal | None:
    """The principal of a valid, unrevoked ``key``, or None."""
    prefix = key_prefix(key)
    if prefix is None:
        return None
    digest = hash_key(key)
    row = (await conn.execute(
        select(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.name, api_keys.c.prefix, api_keys.c.key_hash,
               api_keys.c.revoked_at, api_keys.c.last_used_at, func.now().label("now"))
        .where(api_keys.c.key_hash == digest))).first()
    if row is None or not hmac.compare_digest(bytes(row.key_hash), digest):
        return None
    if row.revoked_at is not None or row.prefix != prefix:
        return None
    if row.last_used_at is None or row.now - row.last_used_at >= TOUCH_INTERVAL:
        await _touch(conn, str(row.id))
    return ApiKeyPrincipal(key_id=str(row.id), tenant_id=str(row.tenant_id), name=row.name, prefix=row.prefix)


async def _touch(conn: AsyncConnection, key_id: str) -> None:
    """Record use; the guard keeps concurrent requests from all writing the same minute."""
    stale = or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < func.now() - TOUCH_INTERVAL)
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id, stale).values(last_used_at=func.now()))


async def list_api_keys(conn: AsyncConnection, *, tenant_id: str, limit: int,
                        after: Position | None = None) -> list[ApiKeyInfo]:
    """The tenant's keys, newest first, revoked ones included: at most ``limit``, from the one after the key
    whose (created_at, id) is ``after``."""
    query = (select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.created_at,
                    api_keys.c.last_used_at, api_keys.c.revoked_at).where(api_keys.c.tenant_id == tenant_id))
    result = await conn.execute(window(query, api_keys.c.created_at, api_keys.c.id, after=after, limit=limit,
                                       newest_first=True))
    return [ApiKeyInfo(key_id=str(r.id), name=r.name, prefix=r.prefix, created_at=r.created_at,
                       last_used_at=r.last_used_at, revoked_at=r.revoked_at) for r in result]


async def revoke_api_key(conn: AsyncConnection, *, tenant_id: str, key_id: str) -> bool:
    """Revoke one of the tenant's keys; False when the tenant has no such key. Idempotent."""
    try:
        uuid.UUID(key_id)
    except ValueError:
        return False
    revoked = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.tenant_id == tenant_id)
        .values(revoked_at=func.coalesce(api_keys.c.revoked_at, func.now()))
        .returning(api_keys.c.id))
    return revoked.first() is not None
