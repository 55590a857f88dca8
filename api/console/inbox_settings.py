"""The inbox settings page: ``GET /console/inbox-settings`` (admins).

A shell rendered on the server; ``static/inbox-settings.js`` fills and saves it through the JSON API with
the session cookie: ``/v1/settings/waiting`` (the acknowledgement a waiting customer receives, the AI's
choice while waiting, the business hours) and ``/v1/canned-responses`` (the inbox's saved replies).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.console.access import page
from api.deps import EngineDep
from automations.rules import WEEKDAYS

router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)

DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
                     strict=True))


@router.get("/inbox-settings")
async def inbox_settings_page(request: Request, engine: EngineDep) -> Response:
    """Acknowledgement texts, business hours, the two choices, and canned responses."""
    return await page(request, engine, "inbox-settings", "inbox_settings.html", {"days": DAY_NAMES})
