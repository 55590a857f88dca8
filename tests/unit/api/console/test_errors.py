"""Errors: a styled page for browsers and console paths, the API's JSON (unchanged) for everyone else."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aerostic.web import create_app
from config.settings import IngressSettings
from tests.unit.api.console._html import Page

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    api = create_app(IngressSettings(environment="test")).api

    @api.get("/console/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret detail: password=hunter2")

    @api.get("/v1/boom", include_in_schema=False)
    async def api_boom() -> None:
        raise RuntimeError("secret detail: password=hunter2")

    return api


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False)


@pytest.mark.parametrize(("path", "headers"), [("/console/no-such-page", {}), ("/console/no-such-page", HTML),
                                               ("/no-such-page", HTML), ("/console", None)])
def test_unknown_pages_answer_the_styled_404(client: TestClient, path: str, headers: dict[str, str] | None) -> None:
    if headers is None:  # a known console path answered by a wrong method
        response = client.get("/console/nothing/here", headers=HTML)
    else:
        response = client.get(path, headers=headers)
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    assert page.element("error-page")[1]["data-status"] == "404"
    assert page.element("back")[1]["href"] == "/console/login"  # not signed in: the way in
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize(("path", "headers"), [("/v1/no-such-route", HTML), ("/admin/nothing", HTML),
                                               ("/webhooks/nothing", HTML), ("/meta/nothing", HTML),
                                               ("/console/static/missing.js", HTML), ("/no-such-page", {}),
                                               ("/no-such-page", {"Accept": "application/json"})])
def test_the_api_and_other_clients_keep_json(client: TestClient, path: str, headers: dict[str, str]) -> None:
    response = client.get(path, headers=headers)
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


def test_an_api_error_keeps_its_json_even_for_a_browser(client: TestClient) -> None:
    response = client.delete("/v1/auth/login", headers=HTML)
    assert response.status_code == 405 and response.json() == {"detail": "Method Not Allowed"}


def test_a_wrong_method_on_a_console_page_is_a_page(client: TestClient) -> None:
    response = client.get("/console/logout", headers=HTML)
    assert response.status_code == 405 and response.headers["content-type"].startswith("text/html")
    assert Page(response.text).element("error-page")[1]["data-status"] == "405"


def test_an_unexpected_error_is_a_page_without_details(client: TestClient) -> None:
    response = client.get("/console/boom", headers=HTML)
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/html")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert Page(response.text).element("error-page")[1]["data-status"] == "500"
    api = client.get("/v1/boom", headers=HTML)
    assert api.status_code == 500 and api.text == "Internal Server Error" and "hunter2" not in api.text
