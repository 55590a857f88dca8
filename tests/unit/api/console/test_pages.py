"""api.console.pages without a database: what is answered before any credential is looked up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.console.forms import MAX_FORM_BYTES
from api.console.pages import router
from config.settings import IngressSettings
from tests.unit.api.console._html import Page


class Untouchable:
    """A database engine or Redis client that fails the test if it is used."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} should not have been used")


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(router)
    app.state.engine, app.state.redis = Untouchable(), Untouchable()
    app.state.settings = IngressSettings(environment="test", public_url="https://console.example.com")
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


def assert_secured(headers: Any) -> str:
    """The console's headers are there; returns the CSP nonce (empty when the policy has none)."""
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    return policy.split("'nonce-", 1)[1].split("'", 1)[0] if "'nonce-" in policy else ""


def test_the_login_page_needs_no_session(client: TestClient) -> None:
    response = client.get("/console/login")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    nonce = assert_secured(response.headers)
    shown = Page(response.text)
    assert {"email", "password", "login"} <= shown.ids
    assert shown.element("email")[1]["name"] == "email" and shown.element("password")[1]["type"] == "password"
    assert all(attrs.get("nonce") == nonce for tag, attrs in shown.tags if tag in ("style", "script")
               and "src" not in attrs and attrs.get("type") != "application/json")
    assert ("link", {"rel": "stylesheet", "href": "/console/static/console.css"}) in shown.tags  # CSP: 'self'
    assert nonce != assert_secured(client.get("/console/login").headers)  # fresh for every response


@pytest.mark.parametrize("path", ["/console", "/console?attempt=abc"])
def test_pages_without_a_session_send_the_browser_to_login(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    assert_secured(response.headers)


@pytest.mark.parametrize(("method", "path"), [("POST", "/console/api-keys"),
                                              ("POST", "/console/api-keys/revoke")])
def test_key_actions_without_a_session_send_the_browser_to_login(client: TestClient, method: str,
                                                                  path: str) -> None:
    response = client.request(method, path, data={"name": "x"})
    assert response.status_code == 303 and response.headers["location"] == "/console/login"


def test_a_cross_site_login_post_is_refused(client: TestClient) -> None:
    response = client.post("/console/login", data={"email": "a@b.co", "password": "x"},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert_secured(response.headers)


def test_a_cross_site_logout_is_refused(client: TestClient) -> None:
    response = client.post("/console/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403


@pytest.mark.parametrize(("kwargs", "status", "message"), [
    ({"data": {"email": "", "password": ""}}, 400, "Enter your email and password."),
    ({"data": {"email": "ana@example.com"}}, 400, "Enter your email and password."),
    ({"json": {"email": "ana@example.com", "password": "x"}}, 415, "expected application/x-www-form-urlencoded"),
    ({"data": {"email": "a@b.co", "password": "x" * MAX_FORM_BYTES}}, 413, "this form is too large"),
])
def test_unusable_login_forms_are_answered_with_the_form(client: TestClient, kwargs: dict[str, Any], status: int,
                                                          message: str) -> None:
    response = client.post("/console/login", headers={"Origin": "http://testserver"}, **kwargs)
    assert response.status_code == status
    shown = Page(response.text)
    assert shown.text("login-error") == message and "password" in shown.ids


def test_logout_without_a_session_still_clears_the_cookie(client: TestClient) -> None:
    response = client.post("/console/logout", headers={"Origin": "http://testserver"})
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("aerostic_session=") and "max-age=0" in cookie
