"""The integration session: one real local stack (Tansu, PostgreSQL, Redis, ingress, streams,
projector) shared by every integration test; each test works in tenants of its own.

Only the pytest fixtures are here; the constants and helpers they and the tests use are in ``helpers.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from ingress.signature import sign
from metasim import payloads
from schemas.catalogue import WEBHOOKS_RAW
from stack.launcher import LocalStack
from tenants.api_keys import create_key_for
from tenants.commands import attach_number, create_tenant
from tests.integration.browser import browser  # noqa: F401 (the fixture, registered for every test)
from tests.integration.helpers import (
    MODEL,
    SECRET,
    TEST_SCRYPT_N,
    Admin,
    AdminFactory,
    Business,
    BusinessFactory,
    MetaAccount,
    MetaAccountFactory,
    Poster,
    Tenant,
    TenantFactory,
    TopicTail,
    fresh_id,
    new_business,
    quiet_waiting,
    scalar,
    started_stack,
    wait_for,
)


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    local = started_stack(seed="7")
    try:
        yield local
    finally:
        local.stop()
        MODEL.stop()


@pytest.fixture(scope="session")
def settings(stack: LocalStack) -> CoreSettings:
    return CoreSettings(environment="test", kafka_bootstrap_servers=stack.kafka, database_url=stack.database_url,
                        redis_url=stack.redis_url, password_scrypt_n=TEST_SCRYPT_N)


@pytest.fixture(scope="session")
async def producer(stack: LocalStack) -> AsyncIterator[AsyncProducer]:
    """The tests' own acknowledged producer (directory entries, replays, hand-made records)."""
    async with AsyncProducer(stack.kafka) as started:
        yield started


@pytest.fixture(scope="session")
async def db(stack: LocalStack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def http(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def tenant_factory(settings: CoreSettings, producer: AsyncProducer) -> TenantFactory:
    async def make(name: str = "test tenant", *, phone_number_id: str | None = None,
                   waba_id: str | None = None) -> Tenant:
        tenant_id = await create_tenant(settings, name)
        await quiet_waiting(settings, tenant_id)
        pnid, waba = phone_number_id or fresh_id(), waba_id or fresh_id()
        await attach_number(settings, producer, tenant_id=tenant_id, phone_number_id=pnid, waba_id=waba,
                            display_phone_number="15550001111")
        return Tenant(tenant_id, pnid, waba)

    return make


@pytest.fixture(scope="session")
def raw_tail(stack: LocalStack) -> Iterator[TopicTail]:
    tail = TopicTail(stack.kafka, WEBHOOKS_RAW.name)
    yield tail
    tail.close()


@pytest.fixture(scope="session")
def post(http: httpx.AsyncClient) -> Poster:
    async def send(body: dict[str, Any] | bytes, *, secret: str = SECRET,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        if isinstance(body, bytes):
            raw, signed_headers = body, {"X-Hub-Signature-256": sign(body, secret.encode())}
        else:
            raw, signed_headers = payloads.signed(body, secret)
        return await http.post("/webhooks/meta", content=raw,
                               headers=headers if headers is not None else signed_headers)

    return send


@pytest.fixture(scope="session")
async def pipeline_ready(tenant_factory: TenantFactory, post: Poster, db: AsyncEngine) -> None:
    """Wait until a message goes all the way through (the stream worker has joined its group)."""
    tenant = await tenant_factory("probe")
    body = payloads.customer_text(tenant.phone_number_id, tenant.waba_id, "15551230000", "probe")
    assert (await post(body)).status_code == 200
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t", t=tenant.tenant_id),
                   timeout=120, what="the probe message to reach PostgreSQL")


@pytest.fixture(scope="session")
async def sim(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """The Meta simulator's admin and inspection API."""
    async with httpx.AsyncClient(base_url=stack.metasim_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def api(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """The tenant API (served by the ingress), without credentials."""
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def business_factory(settings: CoreSettings, producer: AsyncProducer, sim: httpx.AsyncClient) -> BusinessFactory:
    async def make(name: str = "sender", *, throughput: int = 80, tier: int | None = None,
                   acknowledge: bool = False) -> Business:
        return await new_business(settings, producer, sim, name, throughput=throughput, tier=tier,
                                  acknowledge=acknowledge)

    return make


@pytest.fixture(scope="session")
def meta_account_factory(sim: httpx.AsyncClient) -> MetaAccountFactory:
    async def make(*, numbers: int = 1, status: str = "PENDING", tier: str = "TIER_1K",
                   level: str = "STANDARD", quality: str = "GREEN") -> MetaAccount:
        account = MetaAccount(email=f"owner-{fresh_id()}@shop.test", password=f"pw-{fresh_id()}",
                              business_id=fresh_id(), waba_id=fresh_id(), numbers=[fresh_id() for _ in range(numbers)])
        seeded = await sim.post("/_sim/signup/accounts", json={
            "email": account.email, "password": account.password, "name": "Shop Owner",
            "businesses": [{"id": account.business_id, "name": "Shop Ltd", "wabas": [{
                "id": account.waba_id, "name": "Shop WABA", "numbers": [{
                    "id": pnid, "display_phone_number": f"+1 555-{pnid[-4:]}", "verified_name": "Shop",
                    "quality_rating": quality, "messaging_limit_tier": tier, "throughput_level": level,
                    "status": status} for pnid in account.numbers]}]}]})
        assert seeded.status_code == 201, seeded.text
        return account

    return make


@pytest.fixture(scope="session")
def admin_factory(settings: CoreSettings) -> AdminFactory:
    async def make(name: str = "signup tenant") -> Admin:
        tenant_id = await create_tenant(settings, name)
        await quiet_waiting(settings, tenant_id)
        _, api_key = await create_key_for(settings, tenant_id=tenant_id, name="signup")
        return Admin(tenant_id, api_key)

    return make
