"""Authentication of the tenant API: an API key or a console session.

``TenantDep`` resolves ``Authorization: Bearer <credential>`` (or, without that header, the
``aerostic_session`` cookie) to a ``Principal``: an API key (``aer_…``) acts as the tenant's admin,
a session token (``aes_…``) as its user, each within its tenant's request rate (``api.ratelimit``: 429
with ``Retry-After`` past it). ``AdminDep`` also refuses agents (403). Failures answer 401 with
``WWW-Authenticate: Bearer`` (RFC 6750) and never echo the credential. The platform key
is not a tenant credential and is never accepted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from api.deps import EngineDep, RateLimiterDep
from tenants.api_keys import authenticate, key_prefix
from tenants.sessions import is_session_token, session_principal

SESSION_COOKIE = "aerostic_session"
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An Aerostic API key `aer_…` or a session token `aes_…`")
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="Session",
                              description="The console session set by `POST /v1/auth/login`")
INVALID = "invalid, expired or revoked credentials"


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for; carries no secret."""

    tenant_id: str
    role: str  # admin | agent
    user_id: str | None = None
    key_id: str | None = None

    @property
    def actor(self) -> str:
        """How this principal is recorded as the author of an action."""
        return f"user:{self.user_id}" if self.user_id else f"api_key:{self.key_id}"


def unauthorized(detail: str, *, invalid: bool) -> HTTPException:
    """A 401 with the challenge RFC 6750 asks for."""
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


def credential(credentials: HTTPAuthorizationCredentials | None, cookie: str | None) -> str | None:
    """The request's credential: the bearer token, else the session cookie."""
    return credentials.credentials if credentials is not None else cookie


async def authenticate_request(
    engine: EngineDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Principal:
    """The principal of the request's API key or session; 401 when missing, unknown, expired or revoked."""
    token = credential(credentials, cookie)
    if token is None:
        raise unauthorized("missing credentials: send 'Authorization: Bearer <key>'", invalid=False)
    principal = await _principal(engine, token)
    if principal is None:
        raise unauthorized(INVALID, invalid=True)
    return principal


def credential_of(request: Request) -> str | None:
    """The API key or session token ``request`` carries (bearer header first, then the session cookie)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


async def authenticated(engine: AsyncEngine, token: str) -> bool:
    """Whether ``token`` still authenticates (not revoked, not expired): for long-lived streams."""
    return await _principal(engine, token) is not None


async def _principal(engine: AsyncEngine, token: str) -> Principal | None:
    if key_prefix(token) is not None:
        async with engine.begin() as conn:
            key = await authenticate(conn, token)
        if key is not None:
            return Principal(tenant_id=key.tenant_id, role="admin", key_id=key.key_id)
    elif is_session_token(token):
        async with engine.connect() as conn:
            session = await session_principal(conn, token)
        if session is not None:
            return Principal(tenant_id=session.tenant_id, role=session.role, user_id=session.user_id)
    return None  # malformed ones are refused without a database round trip


async def require_tenant(
    engine: EngineDep, limiter: RateLimiterDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Principal:
    """The request's principal within its tenant's request rate: 401 as ``authenticate_request``, 429 with
    ``Retry-After`` past the rate. A credential seen lately is checked against the rate before the database
    is asked who it is, so that a flood costs little (``api.ratelimit``)."""
    token = credential(credentials, cookie)
    if token is None or (key_prefix(token) is None and not is_session_token(token)):
        return await authenticate_request(engine, credentials, cookie)  # refused, without a round trip
    known = limiter.known_tenant(token)
    if known is not None:
        await limiter.check(known)
    try:
        principal = await authenticate_request(engine, credentials, cookie)
    except HTTPException:
        limiter.forget_credential(token)
        raise
    if principal.tenant_id != known:
        await limiter.check(principal.tenant_id)
    limiter.remember(token, principal.tenant_id)
    return principal


TenantDep = Annotated[Principal, Depends(require_tenant)]


async def require_admin(principal: TenantDep) -> Principal:
    """The principal, when it may administer its tenant; 403 for agents."""
    if principal.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs a tenant admin")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
