"""Error answers a person reads: styled pages for browsers, JSON (exactly as before) for everyone else.

``wants_page(request)`` decides: the API's paths (``/v1``, ``/admin``, ``/webhooks``, ``/meta``,
``/healthz``, the static files) always answer JSON; a path under ``/console`` always answers a page; any
other path answers a page when the client asks for HTML (``Accept: text/html``, as browsers do).
``install(app)`` registers the handlers: 404 → the "Page not found" page with the way back, 403 → the
forbidden page, another HTTP error → the error page with its status, an unexpected exception → the 500
page (no details: they go to the log only), the API's 503 for an unreachable backing service → its page.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response

from api import UNAVAILABLE
from api.console.access import session_user
from api.console.templating import render
from tenants.sessions import SessionPrincipal

log = logging.getLogger(__name__)

API_PREFIXES = ("/v1", "/admin", "/webhooks", "/meta", "/healthz", "/console/static")
CONSOLE_PREFIX = "/console"
Handler = Callable[[Request, Exception], Awaitable[Response]]
AnyHandler = Callable[[Request, Any], Response | Awaitable[Response]]

MESSAGES = {
    status.HTTP_400_BAD_REQUEST: "The request could not be understood.",
    status.HTTP_405_METHOD_NOT_ALLOWED: "This page cannot be opened that way.",
    status.HTTP_413_CONTENT_TOO_LARGE: "What was sent is too large.",
    status.HTTP_429_TOO_MANY_REQUESTS: "Too many requests. Wait a moment, then try again.",
    status.HTTP_500_INTERNAL_SERVER_ERROR: "The console hit an unexpected error. It has been logged; try again.",
    status.HTTP_503_SERVICE_UNAVAILABLE: "The console is briefly unavailable. Try again in a moment.",
}
DEFAULT_MESSAGE = "This page cannot be shown."


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + ".")


def wants_page(request: Request) -> bool:
    """Whether an error on ``request`` should answer a styled page (else the API's JSON)."""
    path = request.url.path
    if any(_under(path, prefix) for prefix in API_PREFIXES):
        return False
    if _under(path, CONSOLE_PREFIX):
        return True
    accept = request.headers.get("accept", "")
    return "text/html" in accept.lower()


async def _viewer(request: Request) -> SessionPrincipal | None:
    """Who is signed in, for the page's navigation; None when unknown or when the database cannot say."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        return None
    try:
        return await session_user(request, engine)
    except Exception:  # an error page must render even when the session cannot be read
        log.debug("error page without navigation: the session could not be read", exc_info=True)
        return None


def error_page(request: Request, status_code: int, user: SessionPrincipal | None, message: str | None = None,
               headers: dict[str, str] | None = None) -> Response:
    """The styled page for ``status_code``."""
    if status_code == status.HTTP_404_NOT_FOUND:
        return render(request, "not_found.html", {"user": user, "path": request.url.path, "error_status": 404},
                      status_code=status_code, headers=headers)
    if status_code == status.HTTP_403_FORBIDDEN:
        return render(request, "forbidden.html", {"user": user, "message": message or "You cannot open this page."},
                      status_code=status_code, headers=headers)
    return render(request, "server_error.html",
                  {"user": user, "status_code": status_code, "error_status": status_code,
                   "message": MESSAGES.get(status_code, DEFAULT_MESSAGE)},
                  status_code=status_code, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not wants_page(request) or exc.status_code < status.HTTP_400_BAD_REQUEST:
        return await http_exception_handler(request, exc)
    message = exc.detail if exc.status_code == status.HTTP_403_FORBIDDEN and isinstance(exc.detail, str) else None
    return error_page(request, exc.status_code, await _viewer(request), message, headers=dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    """The 500: a page for browsers, Starlette's plain answer for the API; details in the log only."""
    if not wants_page(request):
        return PlainTextResponse("Internal Server Error", status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return error_page(request, status.HTTP_500_INTERNAL_SERVER_ERROR, None)


def _paged(api_handler: AnyHandler, status_code: int) -> Handler:
    """``api_handler`` for the API; the styled page of ``status_code`` for a browser."""
    async def handle(request: Request, exc: Exception) -> Response:
        answer = api_handler(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        if not wants_page(request):
            return answer
        retry = answer.headers.get("Retry-After")
        return error_page(request, status_code, None, headers={"Retry-After": retry} if retry else None)

    return handle


def install(app: FastAPI) -> None:
    """Register the handlers (after the API's own, whose 503s they wrap for browsers)."""
    for exc_type in UNAVAILABLE:
        handler = app.exception_handlers.get(exc_type)
        if handler is not None:
            app.exception_handlers[exc_type] = _paged(handler, status.HTTP_503_SERVICE_UNAVAILABLE)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
