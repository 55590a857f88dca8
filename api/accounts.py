"""A tenant's users and API keys, managed by its admins: ``/v1/users`` and ``/v1/api-keys``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from api.account_models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, UserCreate, UserPublic
from api.auth import AdminDep
from api.deps import EngineDep, SettingsDep
from api.pages import Page, PageDep, cursor_checked, page_of
from tenants.api_keys import create_api_key, key_prefix, list_api_keys, revoke_api_key
from tenants.users import EmailTaken, User, create_user, list_users

router = APIRouter(prefix="/v1", tags=["accounts"])


def _public(user: User) -> UserPublic:
    return UserPublic(id=user.user_id, email=user.email, role=user.role, tenant_id=user.tenant_id,
                      created_at=user.created_at, disabled_at=user.disabled_at)


@router.get("/api-keys")
async def get_api_keys(principal: AdminDep, engine: EngineDep, page: PageDep) -> Page[ApiKeyPublic]:
    """The tenant's API keys, newest first, by prefix (the keys themselves are never shown again)."""
    async with engine.connect() as conn:
        with cursor_checked():
            keys = await list_api_keys(conn, tenant_id=principal.tenant_id, limit=page.limit + 1, after=page.after)
    shown, cursor = page_of(keys, page, lambda k: (k.created_at, k.key_id))
    return Page(items=[ApiKeyPublic(id=k.key_id, name=k.name, prefix=k.prefix, created_at=k.created_at,
                                    last_used_at=k.last_used_at, revoked_at=k.revoked_at) for k in shown],
                next_cursor=cursor)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
async def post_api_key(body: ApiKeyCreate, principal: AdminDep, engine: EngineDep) -> ApiKeyCreated:
    """Create an API key; the answer is the only time the key is shown."""
    try:
        async with engine.begin() as conn:
            key_id, key = await create_api_key(conn, tenant_id=principal.tenant_id, name=body.name)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return ApiKeyCreated(id=key_id, name=body.name.strip(), prefix=key_prefix(key) or "", key=key)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "the tenant has no such key"}})
async def delete_api_key(key_id: Annotated[str, Path(max_length=64)], principal: AdminDep,
                         engine: EngineDep) -> Response:
    """Revoke one of the tenant's keys (idempotent)."""
    async with engine.begin() as conn:
        found = await revoke_api_key(conn, tenant_id=principal.tenant_id, key_id=key_id)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "API key not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users")
async def get_users(principal: AdminDep, engine: EngineDep, page: PageDep) -> Page[UserPublic]:
    """The tenant's users, oldest first."""
    async with engine.connect() as conn:
        with cursor_checked():
            users = await list_users(conn, tenant_id=principal.tenant_id, limit=page.limit + 1, after=page.after)
    shown, cursor = page_of(users, page, lambda u: (u.created_at, u.user_id))
    return Page(items=[_public(u) for u in shown], next_cursor=cursor)


@router.post("/users", status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "the email is already in use"}})
async def post_user(body: UserCreate, principal: AdminDep, engine: EngineDep, settings: SettingsDep) -> UserPublic:
    """Add a user (admin or agent) to the tenant."""
    try:
        async with engine.begin() as conn:
            user = await create_user(conn, tenant_id=principal.tenant_id, email=body.email, password=body.password,
                                     role=body.role, scrypt_n=settings.password_scrypt_n)
    except EmailTaken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return _public(user)
