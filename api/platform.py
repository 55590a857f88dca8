"""The platform operator's API: ``/admin/tenants``, guarded by the platform key.

Only ``Authorization: Bearer <platform_key>`` is accepted here (compared in constant time);
tenant API keys and sessions are not, and the platform key is not accepted on ``/v1``.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from api.account_models import TenantCreate, TenantCreated, TenantPublic
from api.auth import unauthorized
from api.deps import EngineDep, SettingsDep
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
async def get_tenants(engine: EngineDep) -> list[TenantPublic]:
    """Every tenant, oldest first."""
    async with engine.connect() as conn:
        result = await conn.execute(select(tenants).order_by(tenants.c.created_at, tenants.c.id))
        return [TenantPublic(id=str(r.id), name=r.name, created_at=r.created_at) for r in result]
