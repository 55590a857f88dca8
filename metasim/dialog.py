"""The simulated Embedded Signup dialog (what ``FB.login`` or a redirect opens on facebook.com).

``GET /{v}/dialog/oauth`` checks the app, configuration, ``response_type=code``, ``redirect_uri`` and
``state`` (a bad one gets Meta's error page, HTTP 400, never a redirect) and shows the login page; a good
login shows the consent page; ``POST .../confirm`` redirects to ``redirect_uri`` with ``code`` and the
untouched ``state``, or with ``error=access_denied`` on Cancel. The dialog session is server-side (hidden
field ``dialog``), single use, and expires after ``oauth_code_ttl_s`` like the code.
https://developers.facebook.com/docs/whatsapp/embedded-signup/implementation
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import QueryParams

from metasim.calls import simulator
from metasim.dialog_pages import consent_page, error_page, login_page
from metasim.signup import Signup, User
from metasim.state import SimConfig

router = APIRouter()
EXPIRED = "This login session has expired or was already used. Go back to the app and start again."
BAD_LOGIN = "The email address or password you entered is incorrect."
DENIED = {"error": "access_denied", "error_code": "200", "error_description": "Permissions error",
          "error_reason": "user_denied"}


@router.get("/{version:graph_version}/dialog/oauth", response_class=HTMLResponse)
async def open_dialog(version: str, request: Request) -> Response:
    sim = simulator(request)
    query = request.query_params
    entry = _record(request, "dialog", dict(query))
    problem = _problem(sim.config, query)
    extras: Any = {}
    if problem is None and query.get("extras"):
        try:
            extras = orjson.loads(query["extras"])
        except orjson.JSONDecodeError:
            extras = None
        if not isinstance(extras, dict):
            problem = "Invalid extras: the extras parameter must be a JSON object."
    if problem is not None:
        return _html(entry, error_page(problem), 400)
    session = sim.signup.open_dialog(client_id=query["client_id"], redirect_uri=query["redirect_uri"],
                                     state=query["state"], config_id=query["config_id"], extras=extras)
    return _html(entry, login_page(session, version=version, app_name=sim.config.app_name))


@router.post("/{version:graph_version}/dialog/oauth/login", response_class=HTMLResponse)
async def login(version: str, request: Request) -> Response:
    sim = simulator(request)
    form = await _form(request)
    entry = _record(request, "login", {**form, "password": "***"})
    session = sim.signup.dialog(form.get("dialog", ""))
    if session is None:
        return _html(entry, error_page(EXPIRED), 400)
    user = sim.signup.login(form.get("email", ""), form.get("password", ""))
    if user is None:
        page = login_page(session, version=version, app_name=sim.config.app_name, email=form.get("email", ""),
                          error=BAD_LOGIN)
        return _html(entry, page, 401)
    session.user = user
    return _html(entry, consent_page(user, session, version=version, app_name=sim.config.app_name))


@router.post("/{version:graph_version}/dialog/oauth/confirm", response_class=HTMLResponse)
async def confirm(version: str, request: Request) -> Response:
    sim = simulator(request)
    form = await _form(request)
    entry = _record(request, "confirm", form)
    session = sim.signup.dialog(form.get("dialog", ""))
    if session is None or session.user is None:
        return _html(entry, error_page(EXPIRED), 400)
    user, decision = session.user, form.get("decision")
    if decision == "cancel":
        session.used = True
        return _redirect(entry, session.redirect_uri, {**DENIED, "state": session.state})
    business_id, waba_id = _choice(sim.signup, user, form)
    problem = None if decision == "allow" else "Choose Allow or Cancel."
    if problem is None and not sim.signup.owns(user, business_id=business_id, waba_id=waba_id):
        problem = (f"Choose one of your business portfolios and one of its WhatsApp Business Accounts "
                   f"(WhatsApp Business Account {waba_id!r} is not in business portfolio {business_id!r}).")
    if problem is not None:
        page = consent_page(user, session, version=version, app_name=sim.config.app_name, error=problem)
        return _html(entry, page, 400)
    number = sim.signup.numbers.get(form.get("phone_number_id") or "")  # informative: kept if in the WABA
    code = sim.signup.issue_code(session, business_id=business_id, waba_id=waba_id,
                                 phone_number_id=number.seed.id if number and number.waba_id == waba_id else None)
    return _redirect(entry, session.redirect_uri, {"code": code, "state": session.state})


def _problem(config: SimConfig, query: QueryParams) -> str | None:
    """What Meta's dialog would refuse in the query, worded like its error page."""
    redirect = urlsplit(query.get("redirect_uri", ""))
    if query.get("client_id") != config.app_id:
        return "Invalid App ID: The provided app ID does not look like a valid app ID."
    if redirect.scheme not in ("http", "https") or not redirect.netloc:
        return (f"URL blocked: redirect_uri {query.get('redirect_uri', '')!r} is not an absolute http(s) URL "
                "listed in the app's Valid OAuth Redirect URIs.")
    if query.get("config_id") not in config.config_ids:
        return f"Invalid configuration: config_id {query.get('config_id', '')!r} is not a configuration of this app."
    if query.get("response_type") != "code":
        return "Invalid response_type: this configuration only supports response_type=code."
    if not query.get("state"):
        return "Missing state: the state parameter is required."
    return None


def _choice(signup: Signup, user: User, form: dict[str, str]) -> tuple[str, str | None]:
    """The business and WABA chosen; a field left out means the page's default (the user's first WABA)."""
    business_id = form.get("business_id") or None
    waba_id = form.get("waba_id")
    if waba_id is None:
        waba_id = next((w.id for b in user.businesses if business_id in (None, b.id) for w in b.wabas), "")
    if business_id is None:
        owner = signup.wabas.get(waba_id)
        business_id = owner.business_id if owner else (user.businesses[0].id if user.businesses else "")
    return business_id, waba_id or None


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form (blank values kept: ``waba_id=""`` means "don't share")."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def _record(request: Request, step: str, fields: dict[str, str]) -> dict[str, Any]:
    sim = simulator(request)
    entry: dict[str, Any] = {"time": sim.now(), "method": request.method, "path": request.url.path,
                             "query": dict(request.query_params), "headers": {}, "body": fields, "step": step,
                             "status": None, "response": None, "fault": False}
    sim.signup.record(entry)
    return entry


def _html(entry: dict[str, Any], page: str, status: int = 200) -> HTMLResponse:
    entry["status"] = status
    return HTMLResponse(page, status_code=status)


def _redirect(entry: dict[str, Any], uri: str, params: dict[str, str]) -> RedirectResponse:
    """302 to ``uri`` with ``params`` added to its query (after ``&`` if it has one)."""
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    location = urlunsplit(parts._replace(query=query))
    entry["status"], entry["response"] = 302, {"location": location}
    return RedirectResponse(location, status_code=302)
