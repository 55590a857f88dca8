"""The admin pages' shells (automations, AI agent, agents & teams): labelled controls, unique ids, and only
this origin's scripts (the CSP allows nothing else)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.console.nav import BY_KEY
from api.console.templating import STATIC_DIR, templates
from tenants.sessions import SessionPrincipal
from tests.unit.api.console._html import Page

ADMIN = SessionPrincipal(session_id="s", user_id="u", tenant_id="t", role="admin", email="ana@example.com",
                         expires_at=datetime(2026, 12, 2, tzinfo=UTC))
PAGES = {"automations": "automations.js", "ai": "ai.js", "agents": "agents.js"}
CONTROLS = ("input", "select", "textarea")


def rendered(key: str) -> Page:
    return Page(templates.get_template(f"{key}.html").render({"user": ADMIN, "csp_nonce": "n0nce",
                                                                "request": _Request(BY_KEY[key].path)}))


class _Request:
    """What the layout reads of the request: the path (for the current navigation entry)."""

    def __init__(self, path: str) -> None:
        self.url = type("Url", (), {"path": path})()


@pytest.mark.parametrize("key", sorted(PAGES))
def test_every_control_is_labelled_and_every_id_unique(key: str) -> None:
    page = rendered(key)
    ids = [attrs["id"] for _, attrs in page.tags if "id" in attrs]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    labelled = {attrs["for"] for tag, attrs in page.tags if tag == "label" and "for" in attrs}
    controls = [attrs for tag, attrs in page.tags if tag in CONTROLS and attrs.get("type") not in ("radio", "checkbox")]
    assert controls and all(c.get("id") in labelled for c in controls), [c.get("id") for c in controls
                                                                         if c.get("id") not in labelled]


@pytest.mark.parametrize("key", sorted(PAGES))
def test_scripts_come_from_the_console_static_files(key: str) -> None:
    page = rendered(key)
    sources = [attrs.get("src") for tag, attrs in page.tags
               if tag == "script" and attrs.get("type") != "application/json"]
    assert f"/console/static/{PAGES[key]}" in sources and "/console/static/admin-pages.js" in sources
    for source in sources:
        assert source and source.startswith("/console/static/"), source
        assert (STATIC_DIR / source.removeprefix("/console/static/")).is_file(), source
    assert ("link", {"rel": "stylesheet", "href": "/console/static/admin.css"}) in page.tags
