"""The platform operator's API: ``/admin/tenants`` (create, list, set a tenant's API rate), guarded by the
platform key.

Only ``Authorization: Bearer <platform_key>`` is accepted here (compared in constant time);
tenant API keys and sessions are not, and the platform key is not accepted on ``/v1``.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update

from api.account_models import TenantCreate, TenantCreated, TenantPublic, TenantRateLimit
from api.auth import unauthorized
from api.deps import EngineDep, RateLimiterDep, SettingsDep
from api.pages import Page, PageDep, keyset, page_of
from db.tables import tenants
from tenants.users import EmailTaken, create_user

platform_bearer = HTTPBearer(auto_error=False, scheme_name="PlatformKey", description="The platform key")


async def require_platform(settings: SettingsDep,
                           credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(platform_bearer)]
                           ) -> None:
    """Refuse (401) a request without the platform key."""
    if credentials is None:
        raise unauthorized("missing platform key", invalid=False)
    expected = settings.platform_key.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise unauthorized("invalid platform key", invalid=True)


router = APIRouter(prefix="/admin", tags=["platform"], dependencies=[Depends(require_platform)])


@router.post("/tenants", status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "the admin email is already in use"}})
async def post_tenant(body: TenantCreate, engine: EngineDep, settings: SettingsDep) -> TenantCreated:
    """Create a tenant with its first admin user (one transaction)."""
    tenant_id = str(uuid.uuid4())
    try:
        async with engine.begin() as conn:
            await conn.execute(tenants.insert().values(id=tenant_id, name=body.name.strip()))
            admin = await create_user(conn, tenant_id=tenant_id, email=body.admin_email,
                                      password=body.admin_password, role="admin",
                                      scrypt_n=settings.password_scrypt_n)
    except EmailTaken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return TenantCreated(tenant_id=tenant_id, admin_user_id=admin.user_id)


@router.get("/tenants")
async def get_tenants(engine: EngineDep, page: PageDep) -> Page[TenantPublic]:
    """Every tenant, oldest first."""
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(select(tenants), tenants.c.created_at, tenants.c.id, page)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
    return Page(items=[_public(r) for r in shown], next_cursor=cursor)


@router.put("/tenants/{tenant_id}/rate-limit", responses={404: {"description": "no such tenant"}})
async def put_rate_limit(tenant_id: Annotated[uuid.UUID, Path()], body: TenantRateLimit, engine: EngineDep,
                         limiter: RateLimiterDep) -> TenantPublic:
    """Set the tenant's own request rate on the tenant API (``null``: the platform's default)."""
    async with engine.begin() as conn:
        row = (await conn.execute(update(tenants).where(tenants.c.id == str(tenant_id))
                                  .values(api_rate_per_s=body.per_s, api_rate_burst=body.burst)
                                  .returning(*tenants.c))).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "tenant not found")
    limiter.forget(str(tenant_id))
    return _public(row)


def _public(row: Any) -> TenantPublic:
    return TenantPublic(id=str(row.id), name=row.name, created_at=row.created_at,
                        rate_limit=TenantRateLimit(per_s=row.api_rate_per_s, burst=row.api_rate_burst))
