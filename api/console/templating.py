"""The console's templates: one autoescaping Jinja2 environment and the security headers of every page.

Every console response carries a Content-Security-Policy that allows this origin only, plus the
page's inline ``<script>`` and ``<style>`` through a nonce drawn fresh for each response,
``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin`` and ``Cache-Control: no-store``
(pages show API keys and account details, which no cache should keep). Templates live in
``templates/`` beside this module; ``render`` is what routes (the console's and Embedded
Signup's) call.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.responses import Response

from api.console.labels import label, meta_span, script_tables
from api.console.nav import current, nav_items

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"  # served at /console/static (vendor/: npm libraries)
NONCE_BYTES = 18


def when(value: datetime | str | None, missing: str = "—") -> str:
    """A timestamp as people read it (UTC, to the minute); ``missing`` for None."""
    if value is None or value == "":
        return missing
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


INLINE_CODE = re.compile(r"`([^`]+)`")


def inline_code(text: str | None) -> Markup:
    """``text`` escaped, its `backticked` parts as ``<code>`` (the API's docstrings and descriptions)."""
    escaped = str(escape(text or ""))
    return Markup(INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escaped))  # noqa: S704 - escaped above


def _environment() -> jinja2.Environment:
    # autoescape=True escapes every template whatever its name; select_autoescape would skip unknown extensions.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["inline_code"] = inline_code
    env.filters["meta"] = meta_span  # {{ value | meta("quality") }} → <span title="GREEN">High</span>
    env.globals["meta_label"] = label
    env.globals["meta_tables"] = script_tables
    env.globals["nav_items"] = nav_items
    env.globals["current_page"] = current
    return env


templates = Jinja2Templates(env=_environment())


def content_security_policy(nonce: str | None) -> str:
    """The policy of a console response: only this origin, and inline code only with ``nonce``."""
    inline = f" 'nonce-{nonce}'" if nonce else ""
    return ("default-src 'self'; "
            f"script-src 'self'{inline}; style-src 'self'{inline}; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


def secure(response: Response, *, nonce: str | None = None) -> Response:
    """Add the console's security headers to ``response`` (and return it)."""
    response.headers["Content-Security-Policy"] = content_security_policy(nonce)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(request: Request, name: str, context: Mapping[str, Any] | None = None, status_code: int = 200,
           headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """Render template ``name`` with ``context`` as a console page (headers and a fresh CSP nonce)."""
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    response = templates.TemplateResponse(request, name, {**(context or {}), "csp_nonce": nonce},
                                          status_code=status_code, headers=headers)
    secure(response, nonce=nonce)
    return response


def redirect(url: str) -> RedirectResponse:
    """A 303 See Other to ``url`` (a path on this site) with the console's headers."""
    response = RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
    secure(response)
    return response
