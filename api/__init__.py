"""The web application's tenant API (FastAPI): sends, accounts, inbox, configuration, platform.

``install(app)`` mounts the routes and answers 503 (with ``Retry-After``) when PostgreSQL or
Redis cannot be reached, so clients retry instead of seeing a bare 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from api.accounts import router as accounts_router
from api.agents import router as agents_router
from api.ai import router as ai_router
from api.automations import router as automations_router
from api.campaigns import router as campaigns_router
from api.canned_responses import router as canned_responses_router
from api.connection import router as connection_router
from api.contacts import router as contacts_router
from api.dashboards import router as dashboards_router
from api.inbox import router as inbox_router
from api.inbox_actions import router as inbox_actions_router
from api.inbox_thread import router as inbox_thread_router
from api.knowledge import router as knowledge_router
from api.live.stream import router as live_router
from api.login import router as login_router
from api.media import router as media_router
from api.messages import router as messages_router
from api.operator import router as operator_router
from api.platform import router as platform_router
from api.teams import router as teams_router
from api.templates import router as templates_router
from api.tenant_settings import router as settings_router
from api.webhooks import router as webhooks_router

log = logging.getLogger(__name__)

# Connection failures: asyncpg raises OSError itself when it cannot connect; SQLAlchemy wraps the rest.
UNAVAILABLE = (OSError, OperationalError, InterfaceError, PoolTimeoutError, RedisConnectionError, RedisTimeoutError)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: backing service unavailable (%s)", request.method, request.url.path, type(exc).__name__)
    return JSONResponse({"detail": "temporarily unavailable, retry shortly"}, status_code=503,
                        headers={"Retry-After": "1"})


def install(app: FastAPI) -> None:
    """Mount the tenant API on ``app``."""
    for router in (messages_router, login_router, accounts_router, connection_router, platform_router, operator_router,
                   automations_router, knowledge_router, settings_router, agents_router, inbox_router,
                   inbox_actions_router, inbox_thread_router, templates_router, contacts_router,
                   webhooks_router, campaigns_router, ai_router, media_router, live_router,
                   canned_responses_router, teams_router):
        app.include_router(router)
    app.include_router(dashboards_router)
    for exc_type in UNAVAILABLE:
        app.add_exception_handler(exc_type, _unavailable)
