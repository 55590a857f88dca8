"""Embedded Signup in the ingress: ``GET /whatsapp/embedded/start`` and ``GET /meta/callback``.

The start (tenant admins only) signs a single-use ``state`` bound to the tenant and to the browser
(``__Host-aerostic_signup``: a random secret in a ``Secure; HttpOnly; SameSite=Lax`` cookie whose
SHA-256 the state holds), and redirects the browser to Meta's OAuth dialog (``oauth_dialog_url``:
facebook.com in production, the simulator locally). The callback needs the state, that browser's cookie
and a session (or key) of the state's tenant: a forged, expired or replayed state, a dialog URL opened
in another browser (someone the link was sent to), or another tenant's session shows an error page and
nothing is published; a denial shows "You cancelled the connection" and changes nothing. An approval
publishes the code (never a token: the ingress cannot exchange it) to ``signup.requests`` and sends the
browser to the console, which follows the attempt live. Codes, states and tokens are never logged.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from api import oauth_state
from api.auth import AdminDep, authenticate_request, bearer, credential, session_cookie
from api.console.templating import render
from api.deps import EngineDep, ProducerDep, RedisDep, SettingsDep
from broker.producer import DeliveryError
from config.settings import IngressSettings
from schemas.catalogue import SIGNUP_REQUESTS
from schemas.signup import SignupRequest

log = logging.getLogger(__name__)
router = APIRouter(tags=["embedded signup"])

CALLBACK_PATH = "/meta/callback"
BROWSER_COOKIE = "__Host-aerostic_signup"  # __Host-: only this origin sets it (Secure, Path=/, no Domain)
MAX_CODE_LENGTH = 2048
# What Meta's JS SDK sends as `extras` for Embedded Signup v3 (see the reference, §3.1).
EXTRAS = {"setup": {}, "featureType": "", "sessionInfoVersion": "3"}


def redirect_uri(settings: IngressSettings) -> str:
    """The callback URL registered with Meta; the exchange must repeat it exactly."""
    return f"{settings.public_url.rstrip('/')}{CALLBACK_PATH}"


def dialog_url(settings: IngressSettings, state: str) -> str:
    """Meta's OAuth dialog for Aerostic's Embedded Signup configuration."""
    query = urlencode({
        "client_id": settings.meta_app_id, "redirect_uri": redirect_uri(settings), "state": state,
        "config_id": settings.meta_config_id, "response_type": "code", "override_default_response_type": "true",
        "extras": json.dumps(EXTRAS, separators=(",", ":")),
    })
    return f"{settings.oauth_dialog_url.rstrip('/')}/{settings.graph_version}/dialog/oauth?{query}"


@router.get("/whatsapp/embedded/start", status_code=status.HTTP_302_FOUND,
            responses={302: {"description": "to Meta's OAuth dialog"}, 403: {"description": "not a tenant admin"}})
async def start(request: Request, principal: AdminDep, redis: RedisDep, settings: SettingsDep,
                tenant_id: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """Send a tenant admin to Meta's dialog with a fresh state bound to this browser."""
    if tenant_id is not None and tenant_id != principal.tenant_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "you can only connect your own account")
    # The browser keeps its secret across starts, so a flow in a second tab does not undo the first.
    browser = request.cookies.get(BROWSER_COOKIE) or ""
    if not (32 <= len(browser) <= oauth_state.MAX_BROWSER_SECRET_LENGTH and browser.isascii()):
        browser = oauth_state.new_browser_secret()
    state = await oauth_state.issue(redis, settings.state_secret.get_secret_value().encode(),
                                    tenant_id=principal.tenant_id, actor=principal.actor,
                                    ttl_s=settings.state_ttl_s, browser_secret=browser)
    response = RedirectResponse(dialog_url(settings, state), status_code=status.HTTP_302_FOUND)
    response.set_cookie(BROWSER_COOKIE, browser, max_age=settings.state_ttl_s, path="/", secure=True,
                        httponly=True, samesite="lax")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _error(request: Request, message: str, status_code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return render(request, "signup_error.html", {"title": "WhatsApp was not connected", "message": message},
                  status_code=status_code)


async def _session_tenant(request: Request, engine: EngineDep,
                          credentials: HTTPAuthorizationCredentials | None, cookie: str | None) -> str | None:
    """The tenant of the browser's session, if it has a valid one."""
    if credential(credentials, cookie) is None:
        return None
    try:
        return (await authenticate_request(engine, credentials, cookie)).tenant_id
    except HTTPException:
        return None


@router.get(CALLBACK_PATH, response_class=HTMLResponse,
            responses={303: {"description": "approved: to the console"},
                       400: {"description": "bad, expired or used state"}})
async def callback(
    request: Request, engine: EngineDep, redis: RedisDep, producer: ProducerDep, settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    cookie: Annotated[str | None, Depends(session_cookie)],
    state: Annotated[str | None, Query(max_length=oauth_state.MAX_STATE_LENGTH)] = None,
    code: Annotated[str | None, Query(max_length=MAX_CODE_LENGTH)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_reason: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Meta's redirect back: check the state, the browser and the session, then hand the code to the dispatcher."""
    try:
        verified = oauth_state.verify(settings.state_secret.get_secret_value().encode(), state or "")
    except oauth_state.StateError as exc:
        log.info("signup callback refused: %s", exc.reason)
        return _error(request, exc.reason)
    try:
        oauth_state.check_browser(verified, request.cookies.get(BROWSER_COOKIE))
    except oauth_state.StateError as exc:
        log.warning("signup callback for tenant %s opened in a browser that did not start it", verified.tenant_id)
        return _error(request, exc.reason, status.HTTP_403_FORBIDDEN)
    browser_tenant = await _session_tenant(request, engine, credentials, cookie)
    if browser_tenant is None:
        log.info("signup callback for tenant %s without a session", verified.tenant_id)
        return _error(request, "Sign in to Aerostic in this browser, then start the connection again.",
                      status.HTTP_401_UNAUTHORIZED)
    if browser_tenant != verified.tenant_id:
        log.warning("signup callback for tenant %s opened in a session of tenant %s", verified.tenant_id,
                    browser_tenant)
        return _error(request, "This connection was started from another account. Sign in to that account "
                               "or start the connection again.", status.HTTP_403_FORBIDDEN)
    try:
        await oauth_state.consume(redis, verified)
    except oauth_state.StateError as exc:
        log.info("signup callback refused for tenant %s: %s", verified.tenant_id, exc.reason)
        return _error(request, exc.reason)
    if error is not None or code is None:
        log.info("signup cancelled by tenant %s (%s)", verified.tenant_id, error_reason or error or "no code")
        if error is None:
            return _error(request, "Meta returned no authorization code; start the connection again.")
        return render(request, "signup_cancelled.html", {})
    event = SignupRequest(event_id=verified.nonce, tenant_id=verified.tenant_id, attempt_id=verified.nonce,
                          code=code, redirect_uri=redirect_uri(settings), requested_by=verified.actor,
                          requested_at=datetime.now(UTC))
    try:
        await producer.send(SIGNUP_REQUESTS.full_name(settings.topic_prefix), event.encode(), verified.tenant_id)
    except DeliveryError:
        await oauth_state.restore(redis, verified)
        log.error("signup request of tenant %s not acknowledged by the broker", verified.tenant_id)
        return _error(request, "We could not start the connection just now. Reload this page to try again.",
                      status.HTTP_503_SERVICE_UNAVAILABLE)
    log.info("signup attempt %s of tenant %s handed to the dispatcher", verified.nonce[:8], verified.tenant_id)
    response = RedirectResponse(f"/console?{urlencode({'attempt': verified.nonce})}",
                                status_code=status.HTTP_303_SEE_OTHER)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
