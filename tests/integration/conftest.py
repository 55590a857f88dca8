"""The integration session: one real local stack (Tansu, PostgreSQL, Redis, ingress, streams,
projector) shared by every integration test; each test works in tenants of its own."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from aerostic.settings import CoreSettings
from ingress.signature import sign
from metasim import payloads
from stack.launcher import LocalStack
from tenants.commands import attach_number, create_tenant

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "meta"
SECRET = "integration-current-secret"
PYWA_SIGNATURE = json.loads((VECTORS / "signatures" / "pywa-signed-text-message.json").read_text())
PREVIOUS_SECRET = PYWA_SIGNATURE["app_secret"]  # a second active secret, as during rotation
VERIFY_TOKEN = "integration-verify-token"


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(extra_env={
        "AEROSTIC_APP_SECRETS": f"{SECRET},{PREVIOUS_SECRET}",
        "AEROSTIC_VERIFY_TOKEN": VERIFY_TOKEN,
        "AEROSTIC_DELIVERY_TIMEOUT_MS": "3000",
    })
    try:
        local.start_services()
        local.prepare()
        local.start_ingress()
        local.start_streams()
        local.start_projector()
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def settings(stack: LocalStack) -> CoreSettings:
    return CoreSettings(kafka_bootstrap_servers=stack.kafka, database_url=stack.database_url,
                        redis_url=stack.redis_url)


@pytest.fixture(scope="session")
async def db(stack: LocalStack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def http(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as client:
        yield client


@dataclass
class Tenant:
    tenant_id: str
    phone_number_id: str
    waba_id: str


def fresh_id() -> str:
    return str(random.randrange(10**14, 10**15))


TenantFactory = Callable[..., Awaitable[Tenant]]


@pytest.fixture(scope="session")
def tenant_factory(settings: CoreSettings) -> TenantFactory:
    async def make(name: str = "test tenant", *, phone_number_id: str | None = None,
                   waba_id: str | None = None) -> Tenant:
        tenant_id = await create_tenant(settings, name)
        pnid, waba = phone_number_id or fresh_id(), waba_id or fresh_id()
        await attach_number(settings, tenant_id=tenant_id, phone_number_id=pnid, waba_id=waba,
                            display_phone_number="15550001111")
        return Tenant(tenant_id, pnid, waba)

    return make


async def wait_for(probe: Callable[[], Awaitable[Any]], *, timeout: float = 60.0,  # noqa: ASYNC109
                   what: str = "condition") -> Any:
    """Poll ``probe`` until it returns a truthy value (the awaited event happened); fail on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {result!r})")
        await asyncio.sleep(0.05)


async def scalar(db: AsyncEngine, sql: str, **params: Any) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def rows(db: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


def topic_end(stack: LocalStack, topic: str) -> int:
    """Sum of the high watermarks of ``topic``: how many records it holds."""
    consumer = Consumer({"bootstrap.servers": stack.kafka, "group.id": "test-offsets", "log_level": 3})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def topic_records(stack: LocalStack, topic: str) -> list[bytes]:
    """Every value ``topic`` holds now, read from the beginning of each partition (diagnostics)."""
    consumer = Consumer({"bootstrap.servers": stack.kafka, "group.id": "test-read", "log_level": 3,
                         "enable.auto.commit": False})
    values: list[bytes] = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, p, low)])
            while True:
                msg = consumer.poll(10)
                if msg is None:
                    raise AssertionError(f"could not read {topic}[{p}] up to {high}")
                if not msg.error():
                    values.append(msg.value() or b"")
                    if (msg.offset() or 0) >= high - 1:
                        break
        return values
    finally:
        consumer.close()


Poster = Callable[..., Awaitable[httpx.Response]]


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
