"""Helpers of the integration tests: constants, tenants and businesses, polling, SQL, topic readers.

Plain code only; the pytest fixtures that start and share the stack are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from stack.launcher import LocalStack
from stack.processes import free_port
from tenants.api_keys import create_key_for
from tenants.commands import attach_number, create_tenant
from tests.integration.model_server import ModelServer
from vault.cipher import Vault, generate_key_spec

# Meta's test vectors, copied into the repository (provenance and licences in its README.md).
VECTORS = Path(__file__).resolve().parents[2] / "tests" / "data" / "meta"
SECRET = "integration-current-secret"
PYWA_SIGNATURE = json.loads((VECTORS / "signatures" / "pywa-signed-text-message.json").read_text())
PREVIOUS_SECRET = PYWA_SIGNATURE["app_secret"]  # a second active secret, as during rotation
VERIFY_TOKEN = "integration-verify-token"
PLATFORM_KEY = "integration-platform-key"
VAULT_KEYS = generate_key_spec("it-1")
# scrypt's N for passwords in the test session (the stack's and the tests' own hashes): 2^14 keeps the many
# users the tests make cheap; production never goes below OWASP's 2^17 (config.settings refuses it).
TEST_SCRYPT_N = 2**14
# Time in the tests runs faster than at Meta: the pair limit is one message per 0.1 s (burst 45 at the
# simulator, 10 at the dispatcher), and the dispatcher gives up on a silent Graph call after 3 s.
PAIR_INTERVAL_S = "0.1"
# The OpenAI-compatible model the AI worker uses for tenants whose provider is "openai".
MODEL = ModelServer(free_port())
MODEL_KEY = "sk-integration-model-key"
AI_TIMEOUT_S = "1.5"


# The tests' slots are 10 % apart instead of production's 3 %: on a loaded 2-core machine the simulator's event
# loop stalls for tens of milliseconds and then counts several paced sends at once, moving one across its fixed
# one-second window. bench dispatch measures the production margin against the limit.
TEST_RATE_MARGIN = "0.1"


# The tests' webhook deliverer: retries within a second, a delivery is dead 20 s after it was queued and an
# endpoint failing for 30 s is disabled (production: 30 s up to hours, 24 h, 24 h); loopback receivers allowed. Its
# scheduler wakes for a retry when it is due (an idle look every 5 s: a switched-on endpoint is seen within that).
DELIVERER_TIMINGS = {"webhook_retry_base_s": "0.2", "webhook_retry_max_s": "1", "webhook_retry_horizon_s": "20",
                     "webhook_disable_after_s": "30", "webhook_timeout_s": "5", "webhook_poll_s": "0.1",
                     "webhook_idle_poll_s": "5"}


# The tests' dispatcher holds at most this many bulk requests in memory (production: 2,000), so that a backlog
# larger than its buffer, which keeps the bulk lane's partitions pausing and resuming, takes a few seconds to send.
TEST_BULK_BUFFER = 200

# The tests' dispatcher has 128 workers (production: 512, sized for Meta's answer time): the tests of what a
# number may hold (``test_lanes``) queue a few hundred requests, more than the workers, and a few hundred suffice.
TEST_CONCURRENCY = 128


def start_dispatcher(stack: LocalStack) -> None:
    """The tests' dispatcher: it gives up on a silent Graph call after 3 s and retries quickly."""
    stack.start_dispatcher(vault_keys=VAULT_KEYS, request_timeout_s="3", retry_base_s="0.2", retry_max_s="2",
                           hold_recheck_s="0.5", account_cache_s="0.5", pair_interval_s=PAIR_INTERVAL_S,
                           rate_margin=TEST_RATE_MARGIN, bulk_buffer=str(TEST_BULK_BUFFER),
                           concurrency=str(TEST_CONCURRENCY))


@dataclass
class Tenant:
    tenant_id: str
    phone_number_id: str
    waba_id: str


def fresh_id() -> str:
    return str(random.randrange(10**14, 10**15))


TenantFactory = Callable[..., Awaitable[Tenant]]


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


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(stack: LocalStack, child: str) -> Samples:
    """Every Prometheus sample ``child`` serves now: (name, labels) → value."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(stack.metrics_url(child))
    assert response.status_code == 200, response.text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (found, have), value in samples.items() if found == name and wanted <= have)


async def scalar(db: AsyncEngine, sql: str, **params: Any) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def rows(db: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


class TopicTail:
    """Reads a topic from its beginning, then only what is new: exact counts where watermarks are not.

    The embedded broker under-reports high watermarks of idempotent producers' batches, so tests
    count records by reading them.
    """

    def __init__(self, kafka: str, topic: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": kafka, "group.id": "test-tail", "log_level": 3,
                                  "enable.auto.commit": False})
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self.values: list[bytes] = []

    def read(self, idle_s: float = 0.5) -> list[bytes]:
        while (msg := self.consumer.poll(idle_s)) is not None:
            if not msg.error():
                self.values.append(msg.value() or b"")
        return self.values

    def count(self, marker: bytes, idle_s: float = 0.5) -> int:
        return sum(marker in v for v in self.read(idle_s))

    def close(self) -> None:
        self.consumer.close()


def topic_positions(stack: LocalStack, topic: str, *, idle_s: float = 2.0) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record of ``topic`` (diagnostics)."""
    consumer = Consumer({"bootstrap.servers": stack.kafka, "group.id": "test-read", "log_level": 3,
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found = []
        while (msg := consumer.poll(idle_s)) is not None:
            if not msg.error():
                found.append((msg.partition() or 0, msg.offset() or 0, msg.value() or b""))
        return found
    finally:
        consumer.close()


def committed_offsets(stack: LocalStack, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` committed on ``topic`` (diagnostics)."""
    consumer = Consumer({"bootstrap.servers": stack.kafka, "group.id": group, "log_level": 3,
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {tp.partition: tp.offset for tp in consumer.committed(
            [TopicPartition(topic, p) for p in partitions], timeout=10)}
    finally:
        consumer.close()


def topic_records(stack: LocalStack, topic: str, *, idle_s: float = 2.0) -> list[bytes]:
    """Every value ``topic`` holds, read from the beginning until the broker has nothing more (diagnostics).

    Reads until idle rather than up to the high watermark: the embedded broker under-reports
    watermarks of batches from idempotent producers.
    """
    return [value for _, _, value in topic_positions(stack, topic, idle_s=idle_s)]


Poster = Callable[..., Awaitable[httpx.Response]]


@dataclass
class Business:
    """A tenant that can send: a number with a stored token known to the simulator, and an API key."""

    tenant_id: str
    phone_number_id: str
    waba_id: str
    business_id: str
    token: str
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def conversation(self, wa_id: str) -> str:
        return f"{self.phone_number_id}:{wa_id}"


BusinessFactory = Callable[..., Awaitable[Business]]


async def customer_writes(sim: httpx.AsyncClient, db: AsyncEngine, business: Business, wa_id: str,
                          text: str = "I have a question", **extra: Any) -> str:
    """A simulated customer sends a text (opening the 24-hour window); returns its wamid once it is stored.

    The default text is no small talk: the AI (on by default) hands it over and sends nothing."""
    response = await sim.post("/_sim/customers/messages", json={
        "phone_number_id": business.phone_number_id, "from": wa_id, "type": "text", "text": text, **extra})
    assert response.status_code == 200, response.text
    wamid = str(response.json()["wamid"])
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND wamid = :w",
                                  t=business.tenant_id, w=wamid), what="the customer's message to be stored")
    return wamid


async def sim_counts(sim: httpx.AsyncClient) -> dict[str, Any]:
    response = await sim.get("/_sim/counts")
    response.raise_for_status()
    return dict(response.json())


@dataclass
class MetaAccount:
    """A Facebook user in the simulator with one business, one WABA and its numbers (for Embedded Signup)."""

    email: str
    password: str
    business_id: str
    waba_id: str
    numbers: list[str]


MetaAccountFactory = Callable[..., Awaitable[MetaAccount]]


@dataclass
class Admin:
    """A tenant without any WhatsApp account yet, and an admin credential (an API key) for it."""

    tenant_id: str
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


AdminFactory = Callable[..., Awaitable[Admin]]


async def connection(api: httpx.AsyncClient, admin: Admin) -> dict[str, Any]:
    response = await api.get("/v1/whatsapp/connection", headers=admin.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def settled_connection(api: httpx.AsyncClient, admin: Admin, attempt_id: str) -> dict[str, Any]:
    """The connection once the attempt ``attempt_id`` has an outcome."""
    async def done() -> dict[str, Any] | None:
        view = await connection(api, admin)
        attempt = view["attempt"]
        return view if attempt and attempt["attempt_id"] == attempt_id and attempt["status"] != "pending" else None

    return dict(await wait_for(done, timeout=60, what=f"signup attempt {attempt_id[:8]} to finish"))


async def quiet_waiting(settings: CoreSettings, tenant_id: str) -> None:
    """Turn off the acknowledgement a customer waiting for a person gets (on in the product): tests that count
    what was sent after a hand-off expect nothing; ``test_waiting_acknowledgement`` keeps it on."""
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO tenant_settings (tenant_id, waiting) VALUES (:t, :w) "
                                    "ON CONFLICT (tenant_id) DO UPDATE SET waiting = EXCLUDED.waiting"),
                               {"t": tenant_id, "w": json.dumps({"acknowledge": False})})
    finally:
        await engine.dispose()


async def new_business(settings: CoreSettings, producer: AsyncProducer, sim: httpx.AsyncClient, name: str, *,
                       throughput: int = 80, tier: int | None = None, acknowledge: bool = False) -> Business:
    """A tenant with a number whose token is stored (and known to the simulator) and an API key; the waiting
    acknowledgement is off unless ``acknowledge`` (``quiet_waiting``)."""
    tenant_id = await create_tenant(settings, name)
    if not acknowledge:
        await quiet_waiting(settings, tenant_id)
    pnid, waba, business = fresh_id(), fresh_id(), fresh_id()
    token = f"EAAG{random.getrandbits(128):032x}"
    await attach_number(settings, producer, tenant_id=tenant_id, phone_number_id=pnid, waba_id=waba,
                        display_phone_number="15550002222", throughput_mps=throughput, token=token,
                        vault=Vault.from_spec(VAULT_KEYS), business_id=business, tier_limit=tier)
    registered = await sim.post("/_sim/numbers", json={
        "phone_number_id": pnid, "waba_id": waba, "business_id": business, "token": token,
        "display_phone_number": "15550002222", "throughput": throughput, "tier": tier})
    assert registered.status_code < 300, registered.text
    _, api_key = await create_key_for(settings, tenant_id=tenant_id, name="tests")
    return Business(tenant_id, pnid, waba, business, token, api_key)


def started_stack(*, seed: str, root: Path | None = None, model: bool = True) -> LocalStack:
    """A whole local stack as the tests run it (secrets, fast timings, the simulator, the model server if
    ``model``); the caller stops it (``stop()``; the model server with ``MODEL.stop()``)."""
    env = {"AEROSTIC_PASSWORD_SCRYPT_N": str(TEST_SCRYPT_N), "AEROSTIC_APP_SECRETS": f"{SECRET},{PREVIOUS_SECRET}",
           "AEROSTIC_VERIFY_TOKEN": VERIFY_TOKEN, "AEROSTIC_PLATFORM_KEY": PLATFORM_KEY,
           "AEROSTIC_DELIVERY_TIMEOUT_MS": "3000", "AEROSTIC_WEBHOOKS_ALLOW_LOOPBACK": "1"}
    where = {} if root is None else {"root": root}
    # The catalogue's partitions, as on Apache Kafka: the suite checks rebalances and per-partition commits.
    local = LocalStack(**where, environment="test", extra_env=env, max_partitions=None)
    try:
        local.start_services()
        local.prepare()
        local.start_ingress()
        local.start_streams()
        local.start_campaigns()
        local.start_projector()
        local.start_metasim(app_secret=SECRET, pair_interval_s=PAIR_INTERVAL_S, seed=seed)
        start_dispatcher(local)
        local.start_deliverer(**DELIVERER_TIMINGS)
        if model:
            MODEL.start()
            local.start_ai(openai_base_url=MODEL.url, openai_model="test-model", openai_api_key=MODEL_KEY,
                           timeout_s=AI_TIMEOUT_S)
        else:
            local.start_ai(timeout_s=AI_TIMEOUT_S)
    except BaseException:
        local.stop()
        if model:
            MODEL.stop()
        raise
    return local
