"""The console's pages: sign-in, the account page (WhatsApp connection, numbers, API keys), sign-out.

Every page but the sign-in form needs a live session from the ``aerostic_session`` cookie (set by
this form or by ``POST /v1/auth/login``); without one the browser is sent to ``/console/login``.
Pages are rendered server-side from the same functions the JSON API uses (``sign_in``,
``connection_view``, ``tenants.api_keys``), every query scoped to the session's tenant; API keys are
listed a page at a time (``?keys=`` takes the cursor of ``api.pages``). Posts are plain urlencoded
forms that must come from the console's own pages (``forms.same_origin``). A new API key is shown in
the answer to the post that created it and never again.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.account_models import LoginRequest
from api.auth import SESSION_COOKIE
from api.connection import connection_view
from api.console.access import CROSS_SITE, LOGIN_PATH, post_user, refused, session_user
from api.console.forms import FormError, read_form, same_origin
from api.console.templating import redirect, render
from api.console.whatsapp import as_json, numbers_of, script_labels, status_of
from api.deps import EngineDep, RedisDep, SettingsDep
from api.login import clear_session_cookie, client_address, set_session_cookie, sign_in
from api.pages import MAX_CURSOR_LENGTH, PageRequest, decode, page_of
from config.settings import IngressSettings
from db.keyset import BadPosition, Position
from db.tables import signups, tenants
from tenants.api_keys import create_api_key, key_prefix, list_api_keys, revoke_api_key
from tenants.sessions import SessionPrincipal, revoke_session

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)

HOME_PATH = "/console"
WRONG_CREDENTIALS = "Wrong email or password"
THROTTLED = "Too many failed sign-ins. Wait a few minutes, then try again."
MISSING_CREDENTIALS = "Enter your email and password."
ADMINS_ONLY = "Only a tenant admin can manage API keys."
MAX_ATTEMPT_ID_LENGTH = 200


def _login_page(request: Request, *, error: str | None = None, email: str = "", status_code: int = 200,
                headers: dict[str, str] | None = None) -> Response:
    return render(request, "login.html", {"error": error, "email": email}, status_code=status_code,
                  headers=headers)


async def _admin_post(request: Request, engine: AsyncEngine, settings: IngressSettings
                      ) -> SessionPrincipal | Response:
    """The admin behind a console form post, or the answer that refuses it (no session, cross-site, agent)."""
    principal = await post_user(request, engine, settings, "account")
    if isinstance(principal, Response) or principal.role == "admin":
        return principal
    return refused(request, ADMINS_ONLY, principal)


@router.get("/login")
async def login_page(request: Request, engine: EngineDep) -> Response:
    """The sign-in form (the console's only page reachable without a session)."""
    if await session_user(request, engine) is not None:
        return redirect(HOME_PATH)
    return _login_page(request)


@router.post("/login")
async def login_form(request: Request, engine: EngineDep, redis: RedisDep, settings: SettingsDep) -> Response:
    """Sign in with the form: the JSON login's checks and throttling, then the session cookie and the console."""
    if not same_origin(request, public_url=settings.public_url):
        return refused(request, CROSS_SITE)
    try:
        form = await read_form(request)
        credentials = LoginRequest(email=form.get("email", ""), password=form.get("password", ""))
    except FormError as exc:
        return _login_page(request, error=exc.message, status_code=exc.status_code)
    except ValidationError:
        return _login_page(request, error=MISSING_CREDENTIALS, status_code=status.HTTP_400_BAD_REQUEST)
    try:
        _, token, _ = await sign_in(engine=engine, redis=redis, settings=settings, email=credentials.email,
                                    password=credentials.password, address=client_address(request))
    except HTTPException as exc:
        if exc.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            return _login_page(request, error=THROTTLED, email=credentials.email, status_code=exc.status_code,
                               headers=dict(exc.headers or {}))
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            return _login_page(request, error=WRONG_CREDENTIALS, email=credentials.email,
                               status_code=exc.status_code)
        raise
    response = redirect(HOME_PATH)
    set_session_cookie(response, token, settings)
    return response


@router.post("/logout")
async def logout(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    """Revoke the browser's session, forget its cookie, back to the sign-in form."""
    if not same_origin(request, public_url=settings.public_url):
        return refused(request, CROSS_SITE)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with engine.begin() as conn:
            await revoke_session(conn, token)
    response = redirect(LOGIN_PATH)
    clear_session_cookie(response)
    return response


@router.get("")
async def home(request: Request, engine: EngineDep) -> Response:
    """The account page; ``?attempt=<id>`` is where Embedded Signup lands and follows that attempt."""
    principal = await session_user(request, engine)
    if principal is None:
        return redirect(LOGIN_PATH)
    attempt = request.query_params.get("attempt")
    if attempt is not None and not 0 < len(attempt) <= MAX_ATTEMPT_ID_LENGTH:
        attempt = None
    return await _account_page(request, engine, principal, attempt=attempt, keys_after=_keys_cursor(request))


def _keys_cursor(request: Request) -> Position | None:
    """Where the page of API keys starts (``?keys=`` is the cursor of the previous page); a bad one is ignored."""
    cursor = request.query_params.get("keys")
    if cursor is None or not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
        return None
    try:
        return decode(cursor)
    except HTTPException:
        return None


@router.post("/api-keys")
async def create_key(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    """Create an API key and show it, this once."""
    principal = await _admin_post(request, engine, settings)
    if isinstance(principal, Response):
        return principal
    try:
        name = (await read_form(request)).get("name", "")
        async with engine.begin() as conn:
            key_id, key = await create_api_key(conn, tenant_id=principal.tenant_id, name=name)
    except FormError as exc:
        return await _account_page(request, engine, principal, key_error=exc.message, status_code=exc.status_code)
    except ValueError as exc:
        return await _account_page(request, engine, principal, key_error=str(exc),
                                   status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    log.info("API key %s created by user %s of tenant %s", key_id, principal.user_id, principal.tenant_id)
    new_key = {"id": key_id, "name": name.strip(), "prefix": key_prefix(key), "key": key}
    return await _account_page(request, engine, principal, new_key=new_key, status_code=status.HTTP_201_CREATED)


@router.post("/api-keys/revoke")
async def revoke_key(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    """Revoke one of the tenant's API keys (form field ``key_id``)."""
    principal = await _admin_post(request, engine, settings)
    if isinstance(principal, Response):
        return principal
    try:
        key_id = (await read_form(request)).get("key_id", "")
    except FormError as exc:
        return await _account_page(request, engine, principal, key_error=exc.message, status_code=exc.status_code)
    async with engine.begin() as conn:
        found = await revoke_api_key(conn, tenant_id=principal.tenant_id, key_id=key_id)
    if not found:
        return await _account_page(request, engine, principal, key_error="There is no such API key.",
                                   status_code=status.HTTP_404_NOT_FOUND)
    log.info("API key %s revoked by user %s of tenant %s", key_id, principal.user_id, principal.tenant_id)
    return redirect(f"{HOME_PATH}#api-keys")


async def _tenant_name(conn: AsyncConnection, tenant_id: str) -> str:
    name = (await conn.execute(select(tenants.c.name).where(tenants.c.id == tenant_id))).scalar()
    return str(name) if name is not None else ""


async def _attempt_recorded(conn: AsyncConnection, tenant_id: str, attempt_id: str) -> bool:
    """Whether the tenant's signup attempt ``attempt_id`` has reached PostgreSQL (the projector writes it)."""
    found = await conn.execute(select(signups.c.attempt_id)
                               .where(signups.c.tenant_id == tenant_id, signups.c.attempt_id == attempt_id))
    return found.first() is not None


async def _account_page(request: Request, engine: AsyncEngine, principal: SessionPrincipal, *,
                        attempt: str | None = None, new_key: dict[str, Any] | None = None,
                        key_error: str | None = None, keys_after: Position | None = None,
                        status_code: int = status.HTTP_200_OK) -> Response:
    """The account page of ``principal``'s tenant (and nothing of any other tenant); API keys a page at a time."""
    is_admin = principal.role == "admin"
    async with engine.connect() as conn:
        tenant_name = await _tenant_name(conn, principal.tenant_id)
        # Whether the attempt is recorded, before the view: were it asked after, a record landing between the
        # two would leave a view without it ("Not connected") and a page that does not follow the attempt.
        awaiting = attempt is not None and not await _attempt_recorded(conn, principal.tenant_id, attempt)
        view = as_json(await connection_view(conn, principal.tenant_id))
        keys, keys_next = await _keys_page(conn, principal.tenant_id, keys_after) if is_admin else ([], None)
    return render(request, "console.html", {
        "tenant_name": tenant_name, "user": principal, "is_admin": is_admin,
        "status": status_of(view, awaiting=awaiting), "numbers": numbers_of(view),
        "awaited_attempt": attempt if awaiting else None,
        "labels": script_labels(), "keys": keys, "keys_next": keys_next, "new_key": new_key, "key_error": key_error,
    }, status_code=status_code)


async def _keys_page(conn: AsyncConnection, tenant_id: str, after: Position | None) -> tuple[list[Any], str | None]:
    """One page of the tenant's API keys, newest first, and the cursor of the next (None on the last)."""
    page = PageRequest(after=after)
    try:
        keys = await list_api_keys(conn, tenant_id=tenant_id, limit=page.limit + 1, after=after)
    except BadPosition:
        page = PageRequest()
        keys = await list_api_keys(conn, tenant_id=tenant_id, limit=page.limit + 1)
    return page_of(keys, page, lambda k: (k.created_at, k.key_id))
