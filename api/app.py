"""The web application's FastAPI app: health, the tenant API, Embedded Signup and the console.

``create_api(settings, producer)`` builds it; its lifespan starts the Kafka producer it is
given (shared with the webhook hot path when both run in one server, see ``aerostic.web``)
and opens the database engine and the Redis client once, kept on ``app.state`` with the tenants'
rate limiter (``api.ratelimit``). Errors answer JSON to the API and styled pages to browsers
(``api.console.errors``). Every request body is bounded before it is read (``api.limits``), and a
tenant over its rate is refused before the framework sees its request (``api.gate``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import install
from api.console import errors as console_errors
from api.console.admin_pages import router as console_admin_router
from api.console.campaigns_page import router as console_campaigns_router
from api.console.contacts_page import router as console_contacts_router
from api.console.dashboards import router as console_dashboards_router
from api.console.inbox import router as console_inbox_router
from api.console.inbox_settings import router as console_inbox_settings_router
from api.console.pages import router as console_router
from api.console.reference import router as console_reference_router
from api.console.templates_page import router as console_templates_router
from api.console.templating import STATIC_DIR
from api.deps import close_clients, open_clients
from api.gate import RefuseThrottled
from api.limits import BodyLimit
from api.ratelimit import TenantRateLimiter
from api.reference import json_example
from api.reference import router as reference_router
from api.signup import router as signup_router
from broker.producer import AsyncProducer
from config.settings import IngressSettings
from mediastore import open_store


def create_api(settings: IngressSettings, producer: AsyncProducer) -> FastAPI:
    """The FastAPI app; it owns ``producer``'s start and stop."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await producer.start()
        try:
            engine, redis = open_clients(settings)
            app.state.settings, app.state.producer = settings, producer
            app.state.engine, app.state.redis = engine, redis
            app.state.rate_limiter = TenantRateLimiter(engine, redis, settings)
            app.state.media_store = open_store(settings)
            app.state.live_hub = None  # the console's live feed (api.live), started by its first stream
            try:
                yield
            finally:
                if app.state.live_hub is not None:
                    await app.state.live_hub.stop()
                await app.state.media_store.aclose()
                await close_clients(engine, redis)
        finally:
            await producer.stop()

    # No unauthenticated docs: every route but login, the OAuth callback and health needs a credential.
    app = FastAPI(title="Aerostic", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RefuseThrottled)
    app.add_middleware(BodyLimit, default=settings.api_max_body_bytes)  # added last: the outermost
    app.add_api_route("/healthz", _health, methods=["GET"], tags=["health"],
                      responses={200: json_example({"status": "ok"})})
    install(app)
    app.include_router(reference_router)  # GET /v1/openapi.json, for sessions and API keys
    app.include_router(signup_router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="console-static")
    app.include_router(console_router)
    app.include_router(console_admin_router)  # automations, AI agent, agents & teams
    app.include_router(console_dashboards_router)
    app.include_router(console_inbox_router)  # /console/inbox
    app.include_router(console_inbox_settings_router)  # /console/inbox-settings
    for page_router in (console_templates_router, console_contacts_router, console_campaigns_router):
        app.include_router(page_router)
    app.include_router(console_reference_router)  # / and /console/api-reference
    console_errors.install(app)  # styled error pages for browsers; the API's JSON errors unchanged
    return app


async def _health() -> dict[str, str]:
    return {"status": "ok"}
