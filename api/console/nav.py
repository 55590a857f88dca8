"""The console's pages as its navigation shows them: one list, the roles each page is for.

Every console page is listed here once (label, path, who may open it); the layout renders the
entries the signed-in user's role may open, and ``api.console.access`` refuses the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN = frozenset({"admin"})
EVERYONE = frozenset({"admin", "agent"})


@dataclass(frozen=True)
class NavItem:
    """One page of the console."""

    key: str
    label: str
    path: str
    roles: frozenset[str]


NAV: tuple[NavItem, ...] = (
    NavItem("inbox", "Inbox", "/console/inbox", EVERYONE),
    NavItem("dashboards", "Dashboards", "/console/dashboards", ADMIN),
    NavItem("automations", "Automations", "/console/automations", ADMIN),
    NavItem("ai", "AI agent", "/console/ai", ADMIN),
    NavItem("agents", "Agents & teams", "/console/agents", ADMIN),
    NavItem("inbox-settings", "Inbox settings", "/console/inbox-settings", ADMIN),
    NavItem("templates", "Templates", "/console/templates", ADMIN),
    NavItem("contacts", "Contacts", "/console/contacts", ADMIN),
    NavItem("campaigns", "Campaigns", "/console/campaigns", ADMIN),
    NavItem("account", "WhatsApp & keys", "/console", EVERYONE),
    NavItem("api-reference", "API reference", "/console/api-reference", EVERYONE),
)
BY_KEY = {item.key: item for item in NAV}


def nav_items(role: str) -> list[NavItem]:
    """The pages ``role`` may open, in the navigation's order."""
    return [item for item in NAV if role in item.roles]


def current(path: str) -> str | None:
    """The key of the page ``path`` belongs to (the longest matching path), or None."""
    best: NavItem | None = None
    for item in NAV:
        matches = path == item.path or path.startswith(item.path + "/")
        if matches and (best is None or len(item.path) > len(best.path)):
            best = item
    return best.key if best else None
