"""The Templates, Contacts and Campaigns pages' shells: labelled controls, unique ids, only this origin's scripts
(the CSP allows nothing else, deferred after the layout's live feed), and the labels their scripts read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from api.console import campaigns_page, templates_page
from api.console.templating import STATIC_DIR, templates
from campaigns.states import RecipientState
from tenants.sessions import SessionPrincipal
from tests.unit.api.console._html import Page

ADMIN = SessionPrincipal(session_id="s", user_id="u", tenant_id="t", role="admin", email="ana@example.com",
                         expires_at=datetime(2026, 12, 2, tzinfo=UTC))
PAGES = {"templates": ("/console/templates", "templates.js"), "contacts": ("/console/contacts", "contacts.js"),
         "campaigns": ("/console/campaigns", "campaigns.js"),
         "campaign_new": ("/console/campaigns/new", "campaigns.js"),
         "campaign": ("/console/campaigns/1b4e28ba-2fa1-4d2e-8c7a-3a4b5c6d7e8f", "campaigns.js")}
CONTROLS = ("input", "select", "textarea")


class _Request:
    def __init__(self, path: str) -> None:
        self.url = type("Url", (), {"path": path})()


def rendered(name: str) -> Page:
    path, _ = PAGES[name]
    return Page(templates.get_template(f"{name}.html").render({
        "user": ADMIN, "csp_nonce": "n0nce", "request": _Request(path), "page_data": {"x": "</script>"},
        "max_file_mb": 50}))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_control_is_labelled_and_every_id_unique(name: str) -> None:
    page = rendered(name)
    ids = [attrs["id"] for _, attrs in page.tags if "id" in attrs]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    labelled = {attrs["for"] for tag, attrs in page.tags if tag == "label" and "for" in attrs}
    controls = [attrs for tag, attrs in page.tags if tag in CONTROLS and attrs.get("type") not in ("radio", "checkbox")]
    unlabelled = [c.get("id") for c in controls if c.get("id") not in labelled]
    assert not unlabelled, unlabelled


@pytest.mark.parametrize("name", sorted(PAGES))
def test_scripts_are_the_console_static_files_deferred_after_the_live_feed(name: str) -> None:
    page = rendered(name)
    scripts = [attrs for tag, attrs in page.tags if tag == "script" and attrs.get("type") != "application/json"]
    sources = [s.get("src") for s in scripts]
    assert sources.count("/console/static/live.js") == 1
    mine = sources.index("/console/static/admin-pages.js")
    assert sources.index("/console/static/live.js") < mine < sources.index(f"/console/static/{PAGES[name][1]}")
    for script in scripts:
        source = script.get("src")
        assert source and source.startswith("/console/static/"), source
        assert (STATIC_DIR / source.removeprefix("/console/static/")).is_file(), source
        if source in ("/console/static/admin-pages.js", f"/console/static/{PAGES[name][1]}"):
            assert "defer" in script, source


def test_page_data_cannot_close_its_script_element() -> None:
    html = templates.get_template("templates.html").render({
        "user": ADMIN, "csp_nonce": "n", "request": _Request("/console/templates"), "page_data": {"x": "</script>"}})
    assert "</script>\"" not in html and json.loads(html.split('id="page-data" nonce="n">')[1].split("</script>")[0]) \
        == {"x": "</script>"}


def test_every_recipient_state_has_words() -> None:
    assert set(campaigns_page.RECIPIENT_STATES) == {s.value for s in RecipientState}
    assert set(templates_page.labels()) == {"status_tone", "quality_tone", "reason"}
