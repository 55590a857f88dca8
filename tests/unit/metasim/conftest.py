"""Fixtures of the simulator's Embedded Signup tests: a seeded simulator and a headless dialog driver."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from metasim.app import create_app
from metasim.state import SimConfig, Simulator

APP_ID, CONFIG_ID, SECRET = "100000000000001", "200000000000001", "unit-app-secret"
APP_TOKEN = f"{APP_ID}|{SECRET}"
REDIRECT = "https://app.aerostic.test/meta/callback"
EMAIL, PASSWORD = "owner@shop.test", "pw"
STATE = "s.t~a_te-1+2/3= é&x"
T0 = 1_750_000_000.0


def account(**changes: Any) -> dict[str, Any]:
    """Shop Owner: B1 holds W1 (P1 pending, P2 connected at HIGH), B2 holds W2 (P3 pending)."""
    body: dict[str, Any] = {
        "email": EMAIL, "password": PASSWORD, "name": "Shop Owner",
        "businesses": [
            {"id": "B1", "name": "Shop Ltd", "wabas": [
                {"id": "W1", "name": "Shop WABA", "timezone_id": "1", "message_template_namespace": "abc_123",
                 "numbers": [
                     {"id": "P1", "display_phone_number": "+1 555-0100", "verified_name": "Shop",
                      "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K", "throughput_level": "STANDARD",
                      "status": "PENDING", "code_verification_status": "VERIFIED", "platform_type": "CLOUD_API"},
                     {"id": "P2", "display_phone_number": "+1 555-0101", "verified_name": "Shop Two",
                      "throughput_level": "HIGH", "status": "CONNECTED"}]}]},
            {"id": "B2", "name": "Other Ltd", "wabas": [
                {"id": "W2", "name": "Other WABA", "numbers": [
                    {"id": "P3", "display_phone_number": "+44 20 7946 0000", "verified_name": "Other"}]}]}]}
    body.update(changes)
    return body


class Clock:
    def __init__(self, at: float = T0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@dataclass
class SignupSim:
    """The simulator app, an in-process client and a hand-driven clock."""

    client: httpx.AsyncClient
    clock: Clock
    sim: Simulator

    async def open(self, **params: str) -> httpx.Response:
        query = {"client_id": APP_ID, "redirect_uri": REDIRECT, "state": STATE, "config_id": CONFIG_ID,
                 "response_type": "code", "override_default_response_type": "true",
                 "extras": '{"setup":{},"featureType":"","sessionInfoVersion":"3"}', **params}
        return await self.client.get("/v23.0/dialog/oauth", params={k: v for k, v in query.items() if v is not None})

    async def login(self, dialog: str, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
        return await self.client.post("/v23.0/dialog/oauth/login",
                                      data={"dialog": dialog, "email": email, "password": password})

    async def consent(self, **params: str) -> tuple[str, httpx.Response]:
        """Open the dialog and log in; the dialog id and the consent page."""
        dialog = hidden_dialog((await self.open(**params)).text)
        return dialog, await self.login(dialog)

    async def confirm(self, dialog: str, **fields: str) -> httpx.Response:
        return await self.client.post("/v23.0/dialog/oauth/confirm", data={"dialog": dialog, **fields})

    async def code(self, waba_id: str = "W1", business_id: str = "B1", **params: str) -> str:
        """Run the dialog to Allow and return the code from the redirect."""
        dialog, _ = await self.consent(**params)
        answer = await self.confirm(dialog, decision="allow", business_id=business_id, waba_id=waba_id)
        assert answer.status_code == 302, answer.text
        return redirect_params(answer)["code"]

    async def exchange(self, code: str, **params: str) -> httpx.Response:
        query = {"client_id": APP_ID, "client_secret": SECRET, "code": code, "redirect_uri": REDIRECT, **params}
        return await self.client.get("/v23.0/oauth/access_token", params=query)

    async def token(self, waba_id: str = "W1", business_id: str = "B1") -> str:
        answer = await self.exchange(await self.code(waba_id, business_id))
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    async def graph(self, method: str, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.request(method, f"/v23.0/{path}", headers=headers, **kwargs)

    async def send(self, number: str, token: str) -> httpx.Response:
        return await self.graph("POST", f"{number}/messages", token, json={
            "messaging_product": "whatsapp", "to": "15551230001", "type": "text", "text": {"body": "hi"}})


def hidden_dialog(html: str) -> str:
    match = re.search(r'name="dialog" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def graph_error(response: httpx.Response) -> tuple[int, int, int | None, str]:
    """(HTTP status, code, error_subcode, message) of a Graph error answer."""
    error = response.json()["error"]
    return response.status_code, error["code"], error.get("error_subcode"), error["message"]


@pytest.fixture
async def signup() -> AsyncIterator[SignupSim]:
    clock = Clock()
    config = SimConfig(app_secret=SECRET, webhooks={"enabled": False},
                       config_ids=[CONFIG_ID, "200000000000002"])
    app = create_app(config, clock=clock, transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://graph.test") as client:
        seeded = await client.post("/_sim/signup/accounts", json=account())
        assert seeded.status_code == 201, seeded.text
        yield SignupSim(client, clock, app.state.sim)
