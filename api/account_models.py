"""Request and response models of the console API: login, users, API keys and the platform admin."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Email = Field(min_length=3, max_length=320)
Password = Field(min_length=1, max_length=1024)


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@shop.example", "password": "correct horse battery staple"}]})

    email: str = Email
    password: str = Password


class SessionUser(BaseModel):
    """The signed-in user, as login answers it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "8d2e6f4a-1c3b-4a5d-9e7f-0b1c2d3e4f5a", "email": "ada@shop.example", "role": "admin",
                "tenant_id": "3f9c2a1e-7b4d-4e8a-9c1f-2d6b5a8e4f10",
            },
        ]})

    id: str
    email: str
    role: str
    tenant_id: str


class UserPublic(SessionUser):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "c41d7e9a-6b2f-4e3d-8a1c-5f6e7d8c9b0a", "email": "sam@shop.example", "role": "agent",
                "tenant_id": "3f9c2a1e-7b4d-4e8a-9c1f-2d6b5a8e4f10", "created_at": "2026-11-20T08:00:00Z",
                "disabled_at": None,
            },
        ]})

    created_at: datetime
    disabled_at: datetime | None


class LoginResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "token": "aes_q3Vt0Jm4bX9pYc2LwZr8sK1nE5dH7gF6aT0uV2yW4xQ", "expires_at": "2026-12-08T09:14:03Z",
                "user": {
                    "id": "8d2e6f4a-1c3b-4a5d-9e7f-0b1c2d3e4f5a", "email": "ada@shop.example", "role": "admin",
                    "tenant_id": "3f9c2a1e-7b4d-4e8a-9c1f-2d6b5a8e4f10",
                },
            },
        ]})

    token: str
    expires_at: datetime
    user: SessionUser


class PrincipalPublic(BaseModel):
    """``GET /v1/me``: who the request speaks for."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "tenant_id": "3f9c2a1e-7b4d-4e8a-9c1f-2d6b5a8e4f10", "role": "admin",
                "user_id": "8d2e6f4a-1c3b-4a5d-9e7f-0b1c2d3e4f5a", "key_id": None,
            },
            {
                "tenant_id": "3f9c2a1e-7b4d-4e8a-9c1f-2d6b5a8e4f10", "role": "admin", "user_id": None,
                "key_id": "5e1a9c3b-2d4f-4b6a-8c7e-9f0a1b2c3d4e",
            },
        ]})

    tenant_id: str
    role: str
    user_id: str | None
    key_id: str | None


class UserCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"email": "sam@shop.example", "password": "a long enough password", "role": "agent"},
        ]})

    email: str = Email
    password: str = Password
    role: Literal["admin", "agent"]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "order system"}]})

    name: str = Field(min_length=1, max_length=200)


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "5e1a9c3b-2d4f-4b6a-8c7e-9f0a1b2c3d4e", "name": "order system", "prefix": "1f3a9c7e",
                "created_at": "2026-11-20T08:05:00Z", "last_used_at": "2026-12-01T09:14:03Z", "revoked_at": None,
            },
        ]})

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(BaseModel):
    """The new key, shown this once."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "5e1a9c3b-2d4f-4b6a-8c7e-9f0a1b2c3d4e", "name": "order system", "prefix": "1f3a9c7e",
                "key": "aer_1f3a9c7e_Xq2vL8mN4pR7sT1uW9yZ3bC6dF0gH5jK2lM8nP4qR7s",
            },
        ]})

    id: str
    name: str
    prefix: str
    key: str


class TenantCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"name": "Jasper's Market", "admin_email": "ada@shop.example", "admin_password": "a long enough password"},
        ]})

    name: str = Field(min_length=1, max_length=200)
    admin_email: str = Email
    admin_password: str = Password


class TenantCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "tenant_id": "3f9c2a1e-7b4d-4e8a-9c1f-2d6b5a8e4f10",
                "admin_user_id": "8d2e6f4a-1c3b-4a5d-9e7f-0b1c2d3e4f5a",
            },
        ]})

    tenant_id: str
    admin_user_id: str


class TenantRateLimit(BaseModel):
    """A tenant's own request rate on the tenant API; a ``null`` field takes the platform's default."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"per_s": 50.0, "burst": 200}, {"per_s": None, "burst": None}]},
        extra="forbid")

    per_s: float | None = Field(None, gt=0, le=100_000, description="requests a second, sustained")
    burst: int | None = Field(None, ge=1, le=1_000_000, description="requests at once")


class TenantPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "3f9c2a1e-7b4d-4e8a-9c1f-2d6b5a8e4f10", "name": "Jasper's Market",
                "created_at": "2026-11-20T08:00:00Z", "rate_limit": {"per_s": 50.0, "burst": 200},
            },
        ]})

    id: str
    name: str
    created_at: datetime
    rate_limit: TenantRateLimit
