"""``/v1/webhooks``: a tenant's admins manage the endpoints that hear of its events, read their delivery log and
ask for redeliveries. The deliverer process sends; this module only writes configuration and requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from sqlalchemy import select

from api.auth import AdminDep
from api.deps import EngineDep, SettingsDep
from api.pages import Page, PageDep, cursor_checked, page_of
from api.webhook_models import (
    DeliveryPublic,
    Redeliver,
    RedeliveryPublic,
    RotateSecret,
    WebhookCreate,
    WebhookPublic,
    WebhookUpdate,
    WebhookWithSecret,
)
from config.settings import IngressSettings
from db.tables import webhook_events
from webhooks import endpoints
from webhooks.urls import Policy, UrlRefused, resolve

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
EndpointId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-f-]{36}$")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "the tenant has no such endpoint"}}


def _public(endpoint: endpoints.Endpoint) -> WebhookPublic:
    return WebhookPublic(id=endpoint.id, url=endpoint.url, description=endpoint.description, events=endpoint.events,
                         enabled=endpoint.enabled, state=endpoint.state, disabled_at=endpoint.disabled_at,
                         disabled_reason=endpoint.disabled_reason, failing_since=endpoint.failing_since,
                         previous_secret_until=endpoint.previous_secret_until, created_at=endpoint.created_at,
                         updated_at=endpoint.updated_at)


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "webhook endpoint not found")


async def _checked_url(url: str, settings: IngressSettings) -> str:
    """422 naming ``url`` when it may not receive webhooks (checked again at every delivery)."""
    policy = Policy(production=settings.is_production,
                    allow_loopback=settings.webhooks_allow_loopback and not settings.is_production)
    try:
        await resolve(url, policy)
    except UrlRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"url: {exc}") from exc
    return url


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {"description": "too many endpoints"}})
async def create_webhook(body: WebhookCreate, principal: AdminDep, engine: EngineDep,
                         settings: SettingsDep) -> WebhookWithSecret:
    """Register an endpoint; the answer is the only time its signing secret is shown."""
    url = await _checked_url(body.url, settings)
    try:
        async with engine.begin() as conn:
            endpoint, secret = await endpoints.create(conn, tenant_id=principal.tenant_id, url=url,
                                                      description=body.description, events=body.events,
                                                      enabled=body.enabled)
    except endpoints.TooMany as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return WebhookWithSecret(**_public(endpoint).model_dump(), secret=secret)


@router.get("")
async def list_webhooks(principal: AdminDep, engine: EngineDep, page: PageDep) -> Page[WebhookPublic]:
    """The tenant's endpoints, oldest first (never their secrets)."""
    async with engine.connect() as conn:
        with cursor_checked():
            found = await endpoints.listed(conn, tenant_id=principal.tenant_id, limit=page.limit + 1,
                                           after=page.after)
    shown, cursor = page_of(found, page, lambda e: (e.created_at, e.id))
    return Page(items=[_public(e) for e in shown], next_cursor=cursor)


@router.get("/{endpoint_id}", responses=NOT_FOUND)
async def get_webhook(endpoint_id: EndpointId, principal: AdminDep, engine: EngineDep) -> WebhookPublic:
    async with engine.connect() as conn:
        endpoint = await endpoints.get(conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id)
    if endpoint is None:
        raise _not_found()
    return _public(endpoint)


@router.patch("/{endpoint_id}", responses=NOT_FOUND)
async def update_webhook(endpoint_id: EndpointId, body: WebhookUpdate, principal: AdminDep, engine: EngineDep,
                         settings: SettingsDep) -> WebhookPublic:
    """Change the URL, filter, description or switch; ``enabled: true`` also lifts a disable by the deliverer."""
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in values:
        values["url"] = await _checked_url(values["url"], settings)
    async with engine.begin() as conn:
        endpoint = await endpoints.change(conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id, **values)
    if endpoint is None:
        raise _not_found()
    return _public(endpoint)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_webhook(endpoint_id: EndpointId, principal: AdminDep, engine: EngineDep) -> Response:
    async with engine.begin() as conn:
        if not await endpoints.remove(conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id):
            raise _not_found()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/rotate-secret", responses=NOT_FOUND)
async def rotate_secret(endpoint_id: EndpointId, body: RotateSecret, principal: AdminDep,
                        engine: EngineDep) -> WebhookWithSecret:
    """A new secret, shown once; the previous one keeps signing beside it for ``overlap_s`` (both signatures)."""
    async with engine.begin() as conn:
        rotated = await endpoints.rotate(conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id,
                                         overlap=timedelta(seconds=body.overlap_s))
    if rotated is None:
        raise _not_found()
    endpoint, secret = rotated
    return WebhookWithSecret(**_public(endpoint).model_dump(), secret=secret)


@router.get("/{endpoint_id}/deliveries", responses=NOT_FOUND)
async def list_deliveries(endpoint_id: EndpointId, principal: AdminDep, engine: EngineDep, page: PageDep,
                          state: Literal["pending", "delivered", "dead"] | None = Query(None)
                          ) -> Page[DeliveryPublic]:
    """The endpoint's delivery log, newest first: state, attempts, last response code and latency."""
    async with engine.connect() as conn:
        if await endpoints.get(conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id) is None:
            raise _not_found()
        with cursor_checked():
            found = await endpoints.deliveries(conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id,
                                               state=state, limit=page.limit + 1, after=page.after)
    shown, cursor = page_of(found, page, lambda d: (d.created_at, d.id))
    return Page(items=[DeliveryPublic(**vars(d)) for d in shown], next_cursor=cursor)


@router.post("/{endpoint_id}/redeliver", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND)
async def redeliver(endpoint_id: EndpointId, body: Redeliver, principal: AdminDep,
                    engine: EngineDep) -> RedeliveryPublic:
    """Deliver one event, or every event recorded in a time range, again (read back from Kafka by the deliverer)."""
    async with engine.begin() as conn:
        if await endpoints.get(conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id) is None:
            raise _not_found()
        since, until = body.since, body.until
        if body.event_id is not None:
            since = until = await conn.scalar(select(webhook_events.c.recorded_at).where(
                webhook_events.c.tenant_id == principal.tenant_id, webhook_events.c.event_id == body.event_id))
            if since is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "event_id: no such event was delivered")
        assert since is not None and until is not None
        request_id = await endpoints.request_redelivery(conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id,
                                                        since=since, until=until, event_id=body.event_id)
        found = await endpoints.redelivery(conn, tenant_id=principal.tenant_id, request_id=request_id)
    assert found is not None
    return RedeliveryPublic(**found)


@router.get("/{endpoint_id}/redeliveries/{request_id}", responses=NOT_FOUND)
async def get_redelivery(endpoint_id: EndpointId, request_id: EndpointId, principal: AdminDep,
                         engine: EngineDep) -> RedeliveryPublic:
    """Where a redelivery request stands (``done`` with the number of deliveries queued)."""
    async with engine.connect() as conn:
        found = await endpoints.redelivery(conn, tenant_id=principal.tenant_id, request_id=request_id)
    if found is None or found["endpoint_id"] != endpoint_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "redelivery request not found")
    return RedeliveryPublic(**found)
