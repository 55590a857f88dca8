"""The console's dashboards page (admins): charts and tables of ``GET /v1/dashboards``.

The page is a frame the script ``static/dashboards.js`` fills from the JSON API with the session cookie;
agents get the styled 403 page (``api.console.access``). While "Today" is shown the script refreshes on the
console's live feed (``static/live.js``, included when it is installed), at most once every few seconds.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.console.access import page
from api.console.templating import STATIC_DIR
from api.deps import EngineDep

router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)

LIVE_SCRIPT = STATIC_DIR / "live.js"


@router.get("/dashboards")
async def dashboards_page(request: Request, engine: EngineDep) -> Response:
    return await page(request, engine, "dashboards", "dashboards.html", {"live_feed": LIVE_SCRIPT.is_file()})
