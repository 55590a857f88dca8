"""The console's templates: what each state, role and key shows, and that everything is escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.console.templating import templates, when
from api.console.whatsapp import numbers_of, script_labels, status_of
from tenants.api_keys import ApiKeyInfo
from tenants.sessions import SessionPrincipal
from tests.unit.api.console._html import Page

NOW = datetime(2026, 11, 26, 3, 46, tzinfo=UTC)
ADMIN = SessionPrincipal(session_id="s", user_id="u", tenant_id="t", role="admin", email="ana@example.com",
                         expires_at=NOW)
AGENT = SessionPrincipal(session_id="s", user_id="v", tenant_id="t", role="agent", email="bo@example.com",
                         expires_at=NOW)
NUMBER = {"phone_number_id": "106540352242922", "waba_id": "102290129340398", "display_phone_number": "+1 555-0100",
          "verified_name": "Acme", "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K",
          "throughput_mps": 80, "status": "connected"}


def page(view: dict[str, Any], *, user: SessionPrincipal = ADMIN, awaiting: str | None = None,
         **extra: Any) -> Page:
    context = {"tenant_name": "Acme <Shop>", "user": user, "is_admin": user.role == "admin",
               "status": status_of(view, awaiting=awaiting is not None), "numbers": numbers_of(view),
               "awaited_attempt": awaiting, "labels": script_labels(), "keys": [], "new_key": None,
               "key_error": None, "csp_nonce": "n0nce", **extra}
    return Page(templates.get_template("console.html").render(context))


def connection(state: str, *, numbers: list[dict[str, Any]] | None = None, **attempt: Any) -> dict[str, Any]:
    return {"state": state, "attempt": attempt or None, "accounts": [], "numbers": numbers or []}


def test_connected_shows_the_numbers_and_offers_to_reconnect() -> None:
    shown = page(connection("connected", numbers=[NUMBER]))
    assert shown.text("connection-status") == "WhatsApp connected"
    assert shown.element("connection-status")[1]["data-state"] == "connected"
    assert shown.text("connect") == "Reconnect WhatsApp"
    assert shown.element("connect") == ("a", {"id": "connect", "class": "button", "href": "/whatsapp/embedded/start"})
    assert shown.attr_values("data-phone-number-id") == ["106540352242922"]
    numbers = shown.text("numbers")
    assert all(cell in numbers for cell in ("+1 555-0100", "Acme", "High", "1,000 customers a day", "80 messages/s"))
    assert "GREEN" not in numbers and "TIER_1K" not in numbers  # Meta's words only on hover:
    titled = {attrs["title"] for tag, attrs in shown.tags if tag == "span" and "title" in attrs}
    assert {"GREEN", "TIER_1K", "STANDARD"} <= titled
    assert "data-awaited-attempt" not in shown.element("connection-status")[1]


def test_not_connected_offers_to_connect() -> None:
    shown = page(connection("not_connected"))
    assert shown.text("connection-status") == "Not connected"
    assert shown.text("connect") == "Connect WhatsApp"
    assert shown.attr_values("data-phone-number-id") == []
    assert "No numbers connected yet." in shown.text("numbers")


def test_a_failure_is_escaped_and_named() -> None:
    evil = '<script>alert("x")</script> & more'
    shown = page(connection("failed", attempt_id="a", status="failed", step="exchange", error_message=evil))
    assert shown.text("connection-status") == f"Connection failed: exchange: {evil}"
    assert shown.text("connection-error") == evil
    assert shown.text("connection-step") == "exchange"
    html = templates.get_template("signup_error.html").render({"title": "<b>t</b>", "message": evil,
                                                               "csp_nonce": "n"})
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "<b>t</b>" not in html


def test_an_awaited_attempt_is_shown_pending_and_followed() -> None:
    shown = page(connection("not_connected"), awaiting="nonce-1")
    assert shown.text("connection-status") == "Connecting…"
    assert shown.element("connection-status")[1]["data-awaited-attempt"] == "nonce-1"


def test_agents_see_no_connect_button_and_no_keys() -> None:
    shown = page(connection("connected", numbers=[NUMBER]), user=AGENT)
    assert "connect" not in shown.ids and "api-keys" not in shown.ids and "create-key" not in shown.ids
    assert shown.text("connect-hint") == "Ask an admin to connect WhatsApp"
    assert shown.text("user-email") == "bo@example.com" and shown.text("user-role") == "agent"
    assert shown.attr_values("data-phone-number-id") == ["106540352242922"]


def test_admins_see_their_keys_by_prefix_and_a_new_key_once() -> None:
    keys = [ApiKeyInfo(key_id="k1", name="backend <prod>", prefix="0a1b2c3d", created_at=NOW, last_used_at=None,
                       revoked_at=None),
            ApiKeyInfo(key_id="k2", name="old", prefix="deadbeef", created_at=NOW, last_used_at=NOW, revoked_at=NOW)]
    new_key = {"id": "k1", "name": "backend <prod>", "prefix": "0a1b2c3d", "key": "aer_0a1b2c3d_" + "x" * 43}
    shown = page(connection("not_connected"), keys=keys, new_key=new_key)
    assert shown.text("new-key") == new_key["key"]
    assert shown.attr_values("data-key-id") == ["k1", "k2"]
    listed = shown.text("keys")
    assert "backend <prod>" in listed and "aer_0a1b2c3d_…" in listed and "never" in listed
    assert "Revoked 2026-11-26 03:46 UTC" in listed
    revoke_forms = [attrs["action"] for tag, attrs in shown.tags
                    if tag == "form" and "revoke" in attrs.get("class", "")]
    assert revoke_forms == ["/console/api-keys/revoke"]
    assert [attrs["value"] for tag, attrs in shown.tags if attrs.get("name") == "key_id"] == ["k1"]
    assert shown.text("tenant-name") == "Acme <Shop>"
    assert "new-key" not in page(connection("not_connected"), keys=keys).ids


def test_inline_code_carries_the_nonce() -> None:
    shown = page(connection("pending"))
    scripts = [attrs for tag, attrs in shown.tags if tag == "script"]
    assert {"type": "application/json", "id": "console-labels"} in scripts
    assert any(attrs.get("nonce") == "n0nce" for attrs in scripts)
    assert all(attrs.get("nonce") == "n0nce" for tag, attrs in shown.tags if tag == "style")
    assert not any("style" in attrs or any(a.startswith("on") for a in attrs) for _, attrs in shown.tags)


def test_the_cancelled_page_links_back() -> None:
    shown = Page(templates.get_template("signup_cancelled.html").render({"csp_nonce": "n"}))
    assert shown.text("cancelled") == "You cancelled the connection"
    assert shown.element("back")[1]["href"] == "/console"


def test_when() -> None:
    assert when(None) == "—" and when(None, "never") == "never"
    assert when("2026-11-26T05:46:00+02:00") == "2026-11-26 03:46 UTC"
    assert when(NOW) == "2026-11-26 03:46 UTC"
