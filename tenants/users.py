"""Console users of a tenant: create, authenticate, list.

Emails are lower-cased and unique across tenants. Passwords are hashed with scrypt
(``tenants.passwords``) at the process's cost (``password_scrypt_n``, OWASP's by default); a login whose
stored hash is below that cost stores a fresh one. Hashing runs in a worker thread so the event loop
keeps serving.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from config.settings import SCRYPT_N_OWASP, CoreSettings
from db.keyset import Position, window
from db.tables import tenants, users
from tenants.passwords import hash_password, needs_rehash, spend_equal_work, verify_password

__all__ = ["ROLES", "EmailTaken", "User", "authenticate_user", "create_user", "create_user_for", "hash_password",
           "list_users", "normalize_email", "verify_password"]

ROLES = frozenset({"admin", "agent"})
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL_LENGTH = 320


class EmailTaken(ValueError):
    """Another user (of any tenant) already has this email."""


@dataclass(frozen=True)
class User:
    """A user as the API may show it (never the password hash)."""

    user_id: str
    tenant_id: str
    email: str
    role: str
    created_at: datetime
    disabled_at: datetime | None


def _user(row: Any) -> User:
    return User(user_id=str(row.id), tenant_id=str(row.tenant_id), email=row.email, role=row.role,
                created_at=row.created_at, disabled_at=row.disabled_at)


def normalize_email(email: str) -> str:
    """The stored form of ``email``: trimmed and lower-cased."""
    return email.strip().lower()


def _check(email: str, password: str, role: str) -> None:
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL.fullmatch(email):
        raise ValueError("not a valid email address")
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}")


async def create_user(conn: AsyncConnection, *, tenant_id: str, email: str, password: str, role: str,
                      scrypt_n: int = SCRYPT_N_OWASP) -> User:
    """Create a user of ``tenant_id``; ValueError for bad input, EmailTaken when the email is in use."""
    email = normalize_email(email)
    _check(email, password, role)
    password_hash = await asyncio.to_thread(hash_password, password, scrypt_n)
    stmt = insert(users).values(id=str(uuid.uuid4()), tenant_id=tenant_id, email=email,
                                password_hash=password_hash, role=role)
    row = (await conn.execute(stmt.on_conflict_do_nothing(index_elements=[users.c.email])
                              .returning(*[c for c in users.c if c.name != "password_hash"]))).first()
    if row is None:
        raise EmailTaken("this email is already in use")
    return _user(row)


async def authenticate_user(conn: AsyncConnection, email: str, password: str,
                            scrypt_n: int = SCRYPT_N_OWASP) -> User | None:
    """The enabled user with ``email`` and ``password``, or None; costs the same whether or not the email exists.

    A right password whose stored hash is below cost ``scrypt_n`` is hashed again at that cost and stored
    (in ``conn``'s transaction: the caller commits), unless the hash changed meanwhile.
    """
    row = (await conn.execute(select(users).where(users.c.email == normalize_email(email)))).first()
    if row is None or len(password) > MAX_PASSWORD_LENGTH:
        await asyncio.to_thread(spend_equal_work, password[:MAX_PASSWORD_LENGTH], scrypt_n)
        return None
    if not await asyncio.to_thread(verify_password, password, row.password_hash) or row.disabled_at is not None:
        return None
    if needs_rehash(row.password_hash, scrypt_n):
        fresh = await asyncio.to_thread(hash_password, password, scrypt_n)
        await conn.execute(update(users).where(users.c.id == row.id, users.c.password_hash == row.password_hash)
                           .values(password_hash=fresh))
    return _user(row)


async def list_users(conn: AsyncConnection, *, tenant_id: str, limit: int, after: Position | None = None) -> list[User]:
    """The tenant's users, oldest first: at most ``limit``, from the one after the user whose (created_at, id)
    is ``after``."""
    query = select(*[c for c in users.c if c.name != "password_hash"]).where(users.c.tenant_id == tenant_id)
    result = await conn.execute(window(query, users.c.created_at, users.c.id, after=after, limit=limit))
    return [_user(r) for r in result]


async def create_user_for(settings: CoreSettings, *, tenant_id: str, email: str, password: str, role: str) -> str:
    """Operator command: create a user of an existing tenant; return its id."""
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            if (await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is None:
                raise LookupError(f"no tenant {tenant_id}")
            return (await create_user(conn, tenant_id=tenant_id, email=email, password=password, role=role,
                                      scrypt_n=settings.password_scrypt_n)).user_id
    finally:
        await engine.dispose()
