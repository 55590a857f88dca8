"""The team inbox page: ``GET /console/inbox`` (agents and admins).

The page is a shell rendered on the server; ``static/inbox.js`` fills it from the JSON API
(``/v1/conversations`` and its counts, queue, thread, notes, history and actions, ``/v1/agents``,
``/v1/templates``, ``/v1/canned-responses``) with the session cookie, and keeps it current from the
console's live feed (``static/live.js``: ``AerosticLive``). Who the user is and how often the presence
heartbeat repeats reach the script as ``data-*`` attributes, so the page needs no inline script.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.agents import PRESENCE_TTL_S
from api.console.access import page
from api.deps import EngineDep

router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)

HEARTBEAT_S = PRESENCE_TTL_S // 3  # the presence heartbeat repeats well within its TTL


@router.get("/inbox")
async def inbox_page(request: Request, engine: EngineDep) -> Response:
    """The inbox: conversation list, thread, composer and contact panel."""
    return await page(request, engine, "inbox", "inbox.html", {"heartbeat_s": HEARTBEAT_S})
