"""Embedded Signup without a browser: what ``aerostic dev`` and the tests use to approve Meta's dialog.

It does what a person does in the browser, over HTTP: open ``/whatsapp/embedded/start`` as a tenant
admin, follow the redirect to the (simulated) OAuth dialog, log in, pick the WhatsApp account,
press Allow or Cancel, and follow Meta's redirect back to ``/meta/callback`` with the cookie the start
set (the state is bound to it; it is ``Secure``, which an HTTP client keeps off plain http, so it is
sent by hand as a browser on 127.0.0.1 would). Forms are read from the dialog's HTML, so the driver
knows only the field names a person would see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from api.signup import BROWSER_COOKIE


@dataclass
class Form:
    """One ``<form>``: where it posts and the values it would submit as rendered."""

    action: str
    fields: dict[str, str] = field(default_factory=dict)
    ident: str | None = None


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), ident=a.get("id")))
        elif not self.forms:
            return
        elif tag == "input" and a.get("name") and a.get("type", "text") not in ("submit", "button"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select is not None:
            fields = self.forms[-1].fields
            if self._select not in fields or "selected" in a:
                fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def forms(html: str) -> list[Form]:
    """Every form of ``html``."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class DialogError(RuntimeError):
    """The dialog did not behave like Meta's."""


@dataclass(frozen=True)
class Approval:
    """Where Meta sent the browser back to, and what the callback answered."""

    callback_url: str
    response: httpx.Response
    browser_cookie: str  # ``name=value`` of the cookie of the browser that started the flow

    @property
    def attempt_id(self) -> str | None:
        location = self.response.headers.get("location", "")
        values = parse_qs(urlsplit(location).query).get("attempt")
        return values[0] if values else None


async def approve(api: httpx.AsyncClient, auth: dict[str, str], *, email: str, password: str,
                  waba_id: str | None = None, decision: str = "allow") -> Approval:
    """Run the dialog as the Facebook user ``email`` and return the callback's answer (not followed).

    ``api`` is a client of the ingress; ``auth`` its tenant admin's credentials. ``waba_id=""`` shares
    no WhatsApp account; ``None`` keeps the dialog's default.
    """
    start = await api.get("/whatsapp/embedded/start", headers=auth)
    if start.status_code != 302:
        raise DialogError(f"start answered {start.status_code}: {start.text[:200]}")
    started_in = started_browser(start)
    callback_url = await run_dialog(start.headers["location"], email=email, password=password, waba_id=waba_id,
                                    decision=decision, http_timeout=api.timeout)
    return Approval(callback_url, await api.get(callback_url, headers=with_cookie(auth, started_in)), started_in)


async def run_dialog(dialog_url: str, *, email: str, password: str, waba_id: str | None = None,
                     decision: str = "allow", http_timeout: httpx.Timeout | float = 30.0) -> str:
    """Log in to Meta's dialog as ``email``, choose, press Allow or Cancel; the callback URL Meta sends back."""
    async with httpx.AsyncClient(timeout=http_timeout) as browser:
        page = await browser.get(dialog_url)
        login = form_by_id(page, "login-form")
        login.fields.update(email=email, password=password)
        page = await browser.post(urljoin(dialog_url, login.action), data=login.fields)
        consent = form_by_id(page, "consent-form")
        if waba_id is not None:
            consent.fields["waba_id"] = waba_id
        consent.fields["decision"] = decision
        back = await browser.post(urljoin(dialog_url, consent.action), data=consent.fields)
    if back.status_code not in (302, 303):
        raise DialogError(f"the dialog answered {back.status_code}: {back.text[:200]}")
    return str(back.headers["location"])


def started_browser(start: httpx.Response) -> str:
    """``name=value`` of the browser secret's cookie that ``/whatsapp/embedded/start`` set."""
    for header in start.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if BROWSER_COOKIE in cookie:
            return f"{BROWSER_COOKIE}={cookie[BROWSER_COOKIE].value}"
    raise DialogError("the start set no browser cookie")


def with_cookie(headers: dict[str, str], cookie: str) -> dict[str, str]:
    """``headers`` with ``cookie`` added to their ``Cookie`` header."""
    return {**headers, "Cookie": "; ".join(c for c in (headers.get("Cookie"), cookie) if c)}


def form_by_id(page: httpx.Response, ident: str) -> Form:
    for form in forms(page.text):
        if form.ident == ident:
            return form
    raise DialogError(f"no form #{ident} on the dialog page ({page.status_code}): {page.text[:300]}")
