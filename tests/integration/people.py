"""Signed-in people and shared probes for the API tests: users with a session, the config version, commands."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from config import redis_keys
from config.settings import CoreSettings
from schemas.catalogue import CONVERSATIONS_COMMANDS
from stack.launcher import LocalStack
from tenants.users import create_user
from tests.integration.helpers import TEST_SCRYPT_N, topic_records, wait_for

PASSWORD = "a long enough password"


@dataclass
class Person:
    """A user of a tenant with an open console session."""

    user_id: str
    tenant_id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


async def person(api: httpx.AsyncClient, db: AsyncEngine, tenant_id: str, role: str = "agent") -> Person:
    """Create a user of ``tenant_id`` and sign it in."""
    email = f"{role}-{uuid.uuid4().hex[:12]}@example.com"
    async with db.begin() as conn:
        user = await create_user(conn, tenant_id=tenant_id, email=email, password=PASSWORD, role=role,
                                 scrypt_n=TEST_SCRYPT_N)
    response = await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return Person(user.user_id, tenant_id, email, str(response.json()["token"]))


def redis_client(settings: CoreSettings) -> Redis:
    return Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)


async def config_version(settings: CoreSettings, tenant_id: str) -> int:
    """The tenant's configuration version (``aer:config-version:<tenant>``)."""
    redis = redis_client(settings)
    try:
        return int(await redis.get(redis_keys.tenant_config_version(tenant_id)) or 0)
    finally:
        await redis.aclose()


async def commands(stack: LocalStack, tenant_id: str, *, kind: str | None = None,
                   least: int = 1) -> list[dict[str, Any]]:
    """The tenant's records on ``conversations.commands`` (at least ``least`` of them), oldest first per key."""
    async def read() -> list[dict[str, Any]] | None:
        raw = await asyncio.to_thread(topic_records, stack, CONVERSATIONS_COMMANDS.name, idle_s=1.0)
        found = [json.loads(v) for v in raw if tenant_id.encode() in v]
        found = [c for c in found if c.get("tenant_id") == tenant_id and (kind is None or c.get("kind") == kind)]
        return found if len(found) >= least else None

    return list(await wait_for(read, timeout=30, what=f"{least} command(s) of tenant {tenant_id[:8]}"))
