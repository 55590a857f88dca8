"""The console's admin pages: automations, the AI agent, and agents & teams (admins only).

Each page is a shell rendered here for the signed-in admin (an agent gets the styled 403 page); its
JavaScript (``static/automations.js``, ``ai.js``, ``agents.js``) reads and changes everything through
the JSON API (``/v1/automations``, ``/v1/knowledge``, ``/v1/settings/ai``, ``/v1/ai``, ``/v1/agents``,
``/v1/users``, ``/v1/teams``) with the session cookie, so the API's checks and its error texts are the
page's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.console.access import page
from api.deps import EngineDep

router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)


@router.get("/automations")
async def automations_page(request: Request, engine: EngineDep) -> Response:
    """The tenant's automation rules: list in order, create, edit, reorder, enable, executions."""
    return await page(request, engine, "automations", "automations.html")


@router.get("/ai")
async def ai_page(request: Request, engine: EngineDep) -> Response:
    """The AI agent: knowledge base, settings, a question to try, calibration and knowledge gaps."""
    return await page(request, engine, "ai", "ai.html")


@router.get("/agents")
async def agents_page(request: Request, engine: EngineDep) -> Response:
    """The tenant's users with their teams, capacity and load; new users; teams and their queues."""
    return await page(request, engine, "agents", "agents.html")
