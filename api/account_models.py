"""Request and response models of the console API: login, users, API keys and the platform admin."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Email = Field(min_length=3, max_length=320)
Password = Field(min_length=1, max_length=1024)


class LoginRequest(BaseModel):
    email: str = Email
    password: str = Password


class SessionUser(BaseModel):
    """The signed-in user, as login answers it."""

    id: str
    email: str
    role: str
    tenant_id: str


class UserPublic(SessionUser):
    created_at: datetime
    disabled_at: datetime | None


class LoginResponse(BaseModel):
    token: str
    expires_at: datetime
    user: SessionUser


class PrincipalPublic(BaseModel):
    """``GET /v1/me``: who the request speaks for."""

    tenant_id: str
    role: str
    user_id: str | None
    key_id: str | None


class UserCreate(BaseModel):
    email: str = Email
    password: str = Password
    role: Literal["admin", "agent"]


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(BaseModel):
    """The new key, shown this once."""

    id: str
    name: str
    prefix: str
    key: str


class TenantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    admin_email: str = Email
    admin_password: str = Password


class TenantCreated(BaseModel):
    tenant_id: str
    admin_user_id: str


class TenantRateLimit(BaseModel):
    """A tenant's own request rate on the tenant API; a ``null`` field takes the platform's default."""

    model_config = ConfigDict(extra="forbid")

    per_s: float | None = Field(None, gt=0, le=100_000, description="requests a second, sustained")
    burst: int | None = Field(None, ge=1, le=1_000_000, description="requests at once")


class TenantPublic(BaseModel):
    id: str
    name: str
    created_at: datetime
    rate_limit: TenantRateLimit
