"""Who may open a console page: the browser's session, its role, and same-origin form posts.

``page_user`` is what every console page calls first: the session's principal, or the answer that
refuses it (no session → the sign-in form; a role the page is not for → the styled 403 page); ``page`` renders
a page's template for that user.
``post_user`` adds the same-origin check every state-changing form post needs (``forms.same_origin``).
JavaScript on the console's pages calls the JSON API (``/v1``) with the same session cookie.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response, status
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import SESSION_COOKIE
from api.console.forms import same_origin
from api.console.nav import BY_KEY
from api.console.templating import redirect, render
from config.settings import IngressSettings
from tenants.sessions import SessionPrincipal, session_principal

LOGIN_PATH = "/console/login"
CROSS_SITE = "This form can only be sent from the console's own pages."


def not_for_role(page: str) -> str:
    return f"Your role cannot open {BY_KEY[page].label}. Ask a tenant admin." if page in BY_KEY else \
        "Your role cannot open this page. Ask a tenant admin."


async def session_user(request: Request, engine: AsyncEngine) -> SessionPrincipal | None:
    """The live session of the browser's cookie, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    async with engine.connect() as conn:
        return await session_principal(conn, token)


def refused(request: Request, message: str, principal: SessionPrincipal | None = None) -> Response:
    """The styled 403 page."""
    return render(request, "forbidden.html", {"message": message, "user": principal},
                  status_code=status.HTTP_403_FORBIDDEN)


async def page_user(request: Request, engine: AsyncEngine, page: str) -> SessionPrincipal | Response:
    """The signed-in user who may open console page ``page`` (a key of ``nav.NAV``), or the refusal."""
    principal = await session_user(request, engine)
    if principal is None:
        return redirect(LOGIN_PATH)
    if principal.role not in BY_KEY[page].roles:
        return refused(request, not_for_role(page), principal)
    return principal


async def page(request: Request, engine: AsyncEngine, key: str, template: str,
               context: Mapping[str, Any] | None = None) -> Response:
    """Console page ``key`` rendered from ``template`` for the signed-in user who may open it (``user`` in the
    template, with ``context``), or the refusal."""
    principal = await page_user(request, engine, key)
    if isinstance(principal, Response):
        return principal
    return render(request, template, {"user": principal, **(context or {})})


async def post_user(request: Request, engine: AsyncEngine, settings: IngressSettings, page: str
                    ) -> SessionPrincipal | Response:
    """As ``page_user``, for a form post that must also come from the console's own pages."""
    principal = await session_user(request, engine)
    if principal is None:
        return redirect(LOGIN_PATH)
    if not same_origin(request, public_url=settings.public_url):
        return refused(request, CROSS_SITE, principal)
    if principal.role not in BY_KEY[page].roles:
        return refused(request, not_for_role(page), principal)
    return principal
