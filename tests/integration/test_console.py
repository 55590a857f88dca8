"""The console's pages over HTTP against the real ingress, PostgreSQL and Redis: sign-in and sign-out,
what admins and agents see, API keys shown once, tenant isolation and the security headers."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import SimpleCookie

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import CoreSettings
from stack.launcher import LocalStack
from tenants.sessions import hash_token
from tenants.users import create_user_for
from tests.integration.helpers import PLATFORM_KEY, Business, BusinessFactory
from tests.unit.api.console._html import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")

PLATFORM = {"Authorization": f"Bearer {PLATFORM_KEY}"}
PASSWORD = "a long enough password"
KEY = re.compile(r"aer_([0-9a-f]{8})_[A-Za-z0-9_-]{43}")


@pytest.fixture
async def web(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the ingress that posts forms as the console's own pages do (``Origin`` set)."""
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30, follow_redirects=False,
                                 headers={"Origin": stack.ingress_url}) as client:
        yield client


@dataclass
class Account:
    tenant_id: str
    email: str


def new_email(role: str = "admin") -> str:
    return f"{role}-{uuid.uuid4().hex[:12]}@console.test"


async def new_tenant(web: httpx.AsyncClient, name: str = "console tenant") -> Account:
    email = new_email()
    created = await web.post("/admin/tenants", headers=PLATFORM,
                             json={"name": name, "admin_email": email, "admin_password": PASSWORD})
    assert created.status_code == 201, created.text
    return Account(created.json()["tenant_id"], email)


async def console_user(settings: CoreSettings, business: Business, role: str = "admin") -> str:
    """A user of ``business``'s tenant; returns the email."""
    email = new_email(role)
    await create_user_for(settings, tenant_id=business.tenant_id, email=email, password=PASSWORD, role=role)
    return email


def session_cookie(response: httpx.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


async def sign_in(web: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session token the cookie carries."""
    response = await web.post("/console/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"
    return session_cookie(response)["aerostic_session"].value


def cookie(token: str) -> dict[str, str]:
    # Sent explicitly: httpx keeps Secure cookies off plain http.
    return {"Cookie": f"aerostic_session={token}"}


async def console(web: httpx.AsyncClient, token: str, path: str = "/console") -> Page:
    response = await web.get(path, headers=cookie(token))
    assert response.status_code == 200, response.text
    assert_secured(response)
    return Page(response.text)


def assert_secured(response: httpx.Response) -> None:
    """The console's security headers, with a nonce on every inline script and style of the page."""
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    if response.headers.get("content-type", "").startswith("text/html"):
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce is not None, policy
        page = Page(response.text)
        inline = [attrs for tag, attrs in page.tags if tag == "style" or (
            tag == "script" and "src" not in attrs and attrs.get("type") != "application/json")]
        assert all(attrs.get("nonce") == nonce.group(1) for attrs in inline)
        # Files come from this origin only (CSP 'self'): the stylesheet and scripts of /console/static.
        files = [attrs.get("src") or attrs.get("href") for tag, attrs in page.tags
                 if (tag == "script" and "src" in attrs) or (tag == "link" and attrs.get("rel") == "stylesheet")]
        assert "/console/static/console.css" in files and all(f and f.startswith("/console/static/") for f in files)


async def test_the_login_page_needs_no_session(web: httpx.AsyncClient) -> None:
    response = await web.get("/console/login")
    assert response.status_code == 200
    assert_secured(response)
    page = Page(response.text)
    assert {"email", "password", "login"} <= page.ids
    assert page.element("login-form")[1]["action"] == "/console/login"


async def test_a_wrong_password_shows_the_form_again_with_401(web: httpx.AsyncClient) -> None:
    account = await new_tenant(web, "wrong password")
    for email in (account.email, new_email()):  # a wrong password and an unknown email read alike
        response = await web.post("/console/login", data={"email": email, "password": "not the password"})
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
        assert_secured(response)
        page = Page(response.text)
        assert page.text("login-error") == "Wrong email or password"
        assert page.element("email")[1]["value"] == email.lower() and "not the password" not in response.text


async def test_a_good_login_sets_the_session_cookie_and_opens_the_console(web: httpx.AsyncClient) -> None:
    account = await new_tenant(web, "Good <Login> Ltd")
    response = await web.post("/console/login", data={"email": account.email.upper(), "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/console"
    assert_secured(response)
    morsel = session_cookie(response)["aerostic_session"]
    assert morsel.value.startswith("aes_") and morsel["httponly"] and morsel["secure"]
    assert morsel["samesite"].lower() == "lax" and morsel["path"] == "/"
    page = await console(web, morsel.value)
    assert page.text("tenant-name") == "Good <Login> Ltd"
    assert page.text("user-email") == account.email.lower() and page.text("user-role") == "admin"
    assert page.text("connection-status") == "Not connected" and page.text("connect") == "Connect WhatsApp"
    assert page.element("connect")[1]["href"] == "/whatsapp/embedded/start"
    # The session is the JSON API's too.
    me = await web.get("/v1/me", headers=cookie(morsel.value))
    assert me.status_code == 200 and me.json()["tenant_id"] == account.tenant_id
    # A signed-in browser skips the form.
    again = await web.get("/console/login", headers=cookie(morsel.value))
    assert again.status_code == 303 and again.headers["location"] == "/console"


async def test_the_console_without_a_live_session_sends_to_login(web: httpx.AsyncClient, db: AsyncEngine) -> None:
    account = await new_tenant(web, "expired")
    token = await sign_in(web, account.email)
    async with db.begin() as conn:
        await conn.execute(text("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = :h"),
                           {"h": hash_token(token)})
    for headers in ({}, cookie("aes_" + "x" * 43), cookie("not-a-token"), cookie(token)):
        response = await web.get("/console", headers=headers)
        assert response.status_code == 303 and response.headers["location"] == "/console/login", headers
        assert_secured(response)
    attempt = await web.get("/console?attempt=abc")
    assert attempt.status_code == 303 and attempt.headers["location"] == "/console/login"


async def test_the_form_is_throttled_with_the_json_login(web: httpx.AsyncClient) -> None:
    account = await new_tenant(web, "throttled form")
    for _ in range(5):
        wrong = await web.post("/console/login", data={"email": account.email, "password": "still wrong!"})
        assert wrong.status_code == 401
    locked = await web.post("/console/login", data={"email": account.email, "password": PASSWORD})
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    assert Page(locked.text).text("login-error").startswith("Too many failed sign-ins")
    assert "set-cookie" not in locked.headers
    json_login = await web.post("/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    assert json_login.status_code == 429  # one count for both doors


async def test_agents_see_no_connect_button_and_no_key_management(web: httpx.AsyncClient) -> None:
    account = await new_tenant(web, "with an agent")
    admin = await sign_in(web, account.email)
    agent_email = new_email("agent")
    made = await web.post("/v1/users", headers=cookie(admin),
                          json={"email": agent_email, "password": PASSWORD, "role": "agent"})
    assert made.status_code == 201, made.text
    key = (await web.post("/v1/api-keys", headers=cookie(admin), json={"name": "admin's"})).json()
    agent = await sign_in(web, agent_email)
    page = await console(web, agent)
    assert page.text("user-role") == "agent"
    assert page.text("connect-hint") == "Ask an admin to connect WhatsApp"
    assert not {"connect", "api-keys", "keys", "create-key", "new-key"} & page.ids
    assert key["prefix"] not in str(page.tags) and key["prefix"] not in page.text("whatsapp")
    created = await web.post("/console/api-keys", headers=cookie(agent), data={"name": "mine"})
    assert created.status_code == 403 and not KEY.search(created.text)
    revoked = await web.post("/console/api-keys/revoke", headers=cookie(agent), data={"key_id": key["id"]})
    assert revoked.status_code == 403
    assert (await web.get("/v1/me", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 200


async def test_a_key_created_on_the_page_is_shown_once_and_revoked_there(web: httpx.AsyncClient) -> None:
    account = await new_tenant(web, "keys")
    token = await sign_in(web, account.email)
    created = await web.post("/console/api-keys", headers=cookie(token), data={"name": "  shop <backend>  "})
    assert created.status_code == 201, created.text
    assert_secured(created)
    page = Page(created.text)
    key = page.text("new-key")
    match = KEY.fullmatch(key)
    assert match is not None, key

    listed = await web.get("/console", headers=cookie(token))
    assert key not in listed.text and key[13:] not in listed.text
    later = Page(listed.text)
    assert "new-key" not in later.ids
    [key_id] = later.attr_values("data-key-id")
    assert f"aer_{match.group(1)}_" in later.text("keys") and "shop <backend>" in later.text("keys")
    assert "never" in later.text("keys")
    by_key = await web.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert by_key.status_code == 200 and by_key.json()["tenant_id"] == account.tenant_id
    assert "never" not in (await console(web, token)).text("keys")  # last used: just now
    refused = await web.post("/console/api-keys", headers=cookie(token), data={"name": "   "})
    assert refused.status_code == 422 and Page(refused.text).text("key-error")

    revoked = await web.post("/console/api-keys/revoke", headers=cookie(token), data={"key_id": key_id})
    assert revoked.status_code == 303 and revoked.headers["location"].startswith("/console")
    assert (await web.get("/v1/me", headers={"Authorization": f"Bearer {key}"})).status_code == 401
    assert "Revoked" in (await console(web, token)).text("keys")
    missing = await web.post("/console/api-keys/revoke", headers=cookie(token), data={"key_id": str(uuid.uuid4())})
    assert missing.status_code == 404


async def test_posts_from_other_sites_are_refused(web: httpx.AsyncClient) -> None:
    account = await new_tenant(web, "csrf")
    token = await sign_in(web, account.email)
    evil = {"Origin": "https://evil.example", **cookie(token)}
    created = await web.post("/console/api-keys", headers=evil, data={"name": "planted"})
    assert created.status_code == 403 and not KEY.search(created.text)
    logout = await web.post("/console/logout", headers=evil)
    assert logout.status_code == 403
    login = await web.post("/console/login", headers={"Origin": "https://evil.example"},
                           data={"email": account.email, "password": PASSWORD})
    assert login.status_code == 403 and "set-cookie" not in login.headers
    page = await console(web, token)  # still signed in, and nothing was planted
    assert "planted" not in page.text("keys")


async def test_logout_revokes_the_session(web: httpx.AsyncClient) -> None:
    account = await new_tenant(web, "logout")
    token = await sign_in(web, account.email)
    await console(web, token)
    out = await web.post("/console/logout", headers=cookie(token))
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert_secured(out)
    cleared = session_cookie(out)["aerostic_session"]
    assert cleared.value in ("", '""') and cleared["max-age"] == "0"
    after = await web.get("/console", headers=cookie(token))
    assert after.status_code == 303 and after.headers["location"] == "/console/login"
    assert (await web.get("/v1/me", headers=cookie(token))).status_code == 401


async def test_a_connected_tenant_sees_its_numbers_and_nothing_of_another(
        web: httpx.AsyncClient, settings: CoreSettings, business_factory: BusinessFactory) -> None:
    a, b = await business_factory("console A"), await business_factory("console B")
    a_page = await console(web, await sign_in(web, await console_user(settings, a)))
    b_token = await sign_in(web, await console_user(settings, b))
    b_page = await console(web, b_token)
    b_keys = (await web.get("/v1/api-keys", headers=b.auth)).json()["items"]

    assert a_page.text("connection-status") == "WhatsApp connected"
    assert a_page.text("connect") == "Reconnect WhatsApp"
    assert a_page.attr_values("data-phone-number-id") == [a.phone_number_id]
    assert "15550002222" in a_page.text("numbers") and "80 messages/s" in a_page.text("numbers")
    assert b_page.attr_values("data-phone-number-id") == [b.phone_number_id]
    a_html = str(a_page.tags) + " ".join(a_page.text(i) for i in a_page.ids)
    for secret in (b.phone_number_id, b.waba_id, b.tenant_id, b_keys[0]["prefix"], b_keys[0]["id"]):
        assert secret not in a_html
    assert a_page.text("tenant-name") == "console A" and b_page.text("tenant-name") == "console B"

    # A's admin cannot revoke B's key through the page either.
    a_token = await sign_in(web, await console_user(settings, a))
    aimed = await web.post("/console/api-keys/revoke", headers=cookie(a_token), data={"key_id": b_keys[0]["id"]})
    assert aimed.status_code == 404
    assert (await web.get("/v1/me", headers=b.auth)).status_code == 200


async def test_a_failed_attempt_and_an_attempt_on_its_way_are_rendered_server_side(
        web: httpx.AsyncClient, db: AsyncEngine) -> None:
    account = await new_tenant(web, "attempts")
    token = await sign_in(web, account.email)
    attempt = uuid.uuid4().hex
    on_its_way = await console(web, token, f"/console?attempt={attempt}")
    assert on_its_way.text("connection-status") == "Connecting…"
    assert on_its_way.element("connection-status")[1]["data-awaited-attempt"] == attempt

    message = "<b>Invalid</b> verification code format."
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO signups (attempt_id, tenant_id, status, step, error_code, error_message, requested_at, "
            "finished_at) VALUES (:a, :t, 'failed', 'exchange', 100, :m, :now, :now)"),
            {"a": attempt, "t": account.tenant_id, "m": message, "now": datetime.now(UTC)})
    for path in ("/console", f"/console?attempt={attempt}"):
        page = await console(web, token, path)
        assert page.text("connection-status") == f"Connection failed: exchange: {message}"
        assert page.text("connection-error") == message
        assert "data-awaited-attempt" not in page.element("connection-status")[1]
    raw = (await web.get("/console", headers=cookie(token))).text
    assert "<b>Invalid</b>" not in raw and "&lt;b&gt;Invalid&lt;/b&gt;" in raw
