"""Console sessions: create, resolve and revoke.

A session token reads ``aes_<secret>`` (43 URL-safe characters, 256 bits). As with API keys,
only ``sha256(token)`` is stored: the token cannot be guessed, so a fast hash is enough.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import sessions, users
from tenants.users import User

TOKEN_PREFIX = "aes_"  # noqa: S105 (a format marker, not a secret)
TOKEN_PATTERN = re.compile(r"aes_[A-Za-z0-9_-]{43}")
SECRET_BYTES = 32
DEFAULT_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class SessionPrincipal:
    """Who a valid session speaks for."""

    session_id: str
    user_id: str
    tenant_id: str
    role: str
    email: str
    expires_at: datetime


def hash_token(token: str) -> bytes:
    """The stored digest of ``token``."""
    return hashlib.sha256(token.encode()).digest()


def is_session_token(token: str) -> bool:
    """Whether ``token`` is shaped like a session token (checked before any database round trip)."""
    return TOKEN_PATTERN.fullmatch(token) is not None


async def create_session(conn: AsyncConnection, *, user: User,
                         lifetime: timedelta = DEFAULT_LIFETIME) -> tuple[str, datetime]:
    """Open a session for ``user``; return ``(token, expires_at)``. The token is not kept anywhere."""
    token = f"{TOKEN_PREFIX}{secrets.token_urlsafe(SECRET_BYTES)}"
    expires_at = datetime.now(UTC) + lifetime
    await conn.execute(sessions.insert().values(id=str(uuid.uuid4()), token_hash=hash_token(token),
                                                user_id=user.user_id, tenant_id=user.tenant_id,
                                                expires_at=expires_at))
    return token, expires_at


async def session_principal(conn: AsyncConnection, token: str) -> SessionPrincipal | None:
    """The principal of a live session (not expired, not revoked, user enabled), or None."""
    if not is_session_token(token):
        return None
    row = (await conn.execute(
        select(sessions.c.id, sessions.c.user_id, sessions.c.tenant_id, sessions.c.expires_at, users.c.role,
               users.c.email)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.token_hash == hash_token(token), sessions.c.revoked_at.is_(None),
               sessions.c.expires_at > func.now(), users.c.disabled_at.is_(None),
               users.c.tenant_id == sessions.c.tenant_id))).first()
    if row is None:
        return None
    return SessionPrincipal(session_id=str(row.id), user_id=str(row.user_id), tenant_id=str(row.tenant_id),
                            role=row.role, email=row.email, expires_at=row.expires_at)


async def revoke_session(conn: AsyncConnection, token: str) -> bool:
    """Revoke the session of ``token``; False when there is no live session. Idempotent."""
    if not is_session_token(token):
        return False
    revoked = await conn.execute(update(sessions)
                                 .where(sessions.c.token_hash == hash_token(token), sessions.c.revoked_at.is_(None))
                                 .values(revoked_at=func.now()).returning(sessions.c.id))
    return revoked.first() is not None
