"""Console sign-in: ``POST /v1/auth/login``, ``POST /v1/auth/logout`` and ``GET /v1/me``.

Login answers one generic 401 for a wrong email or a wrong password and is throttled per (account,
address), per address and per account (``api.throttle``: the attempt is counted before the password is
checked). A stored password hash below the current cost is replaced on a successful login
(``tenants.users``). The session token comes back in the body and
in an ``HttpOnly; Secure; SameSite=Lax`` cookie. Passwords are never logged. ``sign_in`` holds
the checks and the throttling; the console's login form (``api.console.pages``) calls it too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from api import throttle
from api.account_models import LoginRequest, LoginResponse, PrincipalPublic, SessionUser
from api.auth import SESSION_COOKIE, TenantDep, bearer, credential, session_cookie
from api.deps import EngineDep, RedisDep, SettingsDep
from config.settings import IngressSettings
from tenants.sessions import create_session, revoke_session
from tenants.users import User, authenticate_user, normalize_email

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["console"])

WRONG_CREDENTIALS = "wrong email or password"


def client_address(request: Request) -> str:
    """The address login failures are counted against."""
    return request.client.host if request.client else "unknown"


async def sign_in(*, engine: AsyncEngine, redis: Redis, settings: IngressSettings, email: str, password: str,
                  address: str) -> tuple[User, str, datetime]:
    """Check a user's credentials (throttled) and open a session: ``(user, token, expires_at)``.

    Raises HTTPException 429 (with ``Retry-After``) while the attempt is past a throttle bound, and 401
    ``WRONG_CREDENTIALS`` for a wrong email or password. Shared by the JSON API and the console's login
    form so both check, count and throttle alike.
    """
    email = normalize_email(email)
    await throttle.attempt(redis, email=email, address=address)
    async with engine.begin() as conn:  # a rehashed password is stored with the check
        user = await authenticate_user(conn, email, password, settings.password_scrypt_n)
    if user is None:
        log.info("failed login from %s", address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG_CREDENTIALS)
    await throttle.succeeded(redis, email=email, address=address)
    async with engine.begin() as conn:
        token, expires_at = await create_session(conn, user=user, lifetime=timedelta(seconds=settings.session_ttl_s))
    return user, token, expires_at


def set_session_cookie(response: Response, token: str, settings: IngressSettings) -> None:
    """Hand the session to the browser: ``HttpOnly; Secure; SameSite=Lax``, the whole site."""
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_ttl_s, path="/", secure=True,
                        httponly=True, samesite="lax")


def clear_session_cookie(response: Response) -> None:
    """Tell the browser to forget the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")


@router.post("/auth/login", responses={401: {"description": WRONG_CREDENTIALS},
                                       429: {"description": "too many login attempts; see Retry-After"}})
async def login(body: LoginRequest, request: Request, response: Response, engine: EngineDep, redis: RedisDep,
                settings: SettingsDep) -> LoginResponse:
    """Open a console session for a user."""
    user, token, expires_at = await sign_in(engine=engine, redis=redis, settings=settings, email=body.email,
                                            password=body.password, address=client_address(request))
    set_session_cookie(response, token, settings)
    return LoginResponse(token=token, expires_at=expires_at, user=SessionUser(
        id=user.user_id, email=user.email, role=user.role, tenant_id=user.tenant_id))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: TenantDep, engine: EngineDep,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                 cookie: Annotated[str | None, Depends(session_cookie)]) -> Response:
    """Revoke the request's session (an API key is left alone: revoke keys with ``DELETE /v1/api-keys``)."""
    token = credential(credentials, cookie)
    if principal.user_id is not None and token is not None:
        async with engine.begin() as conn:
            await revoke_session(conn, token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response)
    return response


@router.get("/me")
async def me(principal: TenantDep) -> PrincipalPublic:
    """Who the request speaks for."""
    return PrincipalPublic(tenant_id=principal.tenant_id, role=principal.role, user_id=principal.user_id,
                           key_id=principal.key_id)
