"""Rule 1: a tenant never sees its Meta token and only the dispatcher can decrypt it.

After a full Embedded Signup the plaintext token is searched for in the log of every Aerostic
process, every record of every Kafka topic, every row of every PostgreSQL table, every Redis value
and every API response the tenant got; it must be nowhere. Only the dispatcher's environment
holds the vault keys.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import DispatcherSettings, IngressSettings, ProjectorSettings, StreamsSettings
from schemas.catalogue import CATALOGUE, SIGNUP_REQUESTS
from schemas.signup import SignupRequest
from stack.launcher import LocalStack
from stack.signup_driver import approve
from tenants.users import create_user
from tests.integration.helpers import (
    VAULT_KEYS,
    AdminFactory,
    MetaAccountFactory,
    rows,
    settled_connection,
    topic_records,
)
from vault.cipher import Vault
from vault.exceptions import VaultError

ASYNC = pytest.mark.asyncio(loop_scope="session")


def _forms_of(secret: str) -> list[bytes]:
    """The token as text and as the hex PostgreSQL prints for bytea."""
    return [secret.encode(), secret.encode().hex().encode()]


@ASYNC
async def test_the_plaintext_token_is_nowhere(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        admin_factory: AdminFactory, meta_account_factory: MetaAccountFactory) -> None:
    admin = await admin_factory("secrecy")
    async with db.begin() as conn:
        await create_user(conn, tenant_id=admin.tenant_id, email=f"admin-{admin.tenant_id}@secrecy.test",
                          password="a long enough password", role="admin")
    meta = await meta_account_factory(numbers=2)
    responses: list[httpx.Response] = []
    approval = await approve(api, admin.auth, email=meta.email, password=meta.password)
    responses.append(approval.response)
    view = await settled_connection(api, admin, approval.attempt_id or "")
    assert view["state"] == "connected"
    login = await api.post("/v1/auth/login", json={"email": f"admin-{admin.tenant_id}@secrecy.test",
                                                   "password": "a long enough password"})
    session = {"Authorization": f"Bearer {login.json()['token']}"}
    responses.append(login)
    for path in ("/v1/whatsapp/connection", "/v1/me", "/v1/api-keys", "/v1/users"):
        responses.append(await api.get(path, headers=admin.auth))
        responses.append(await api.get(path, headers=session))
    responses.append(await api.get("/console", headers=session))
    assert all(r.status_code < 400 for r in responses), [(r.url, r.status_code) for r in responses]

    tokens = [t["token"] for t in (await sim.get("/_sim/signup/tokens")).json()["tokens"]
              if meta.waba_id in t["waba_ids"]]
    assert len(tokens) == 1

    # The signup request carried the code, and the code is not a token.
    requests = [SignupRequest.decode(v) for v in topic_records(stack, SIGNUP_REQUESTS.name)]
    mine = [r for r in requests if r.attempt_id == approval.attempt_id]
    assert len(mine) == 1 and mine[0].code and mine[0].code != tokens[0]

    corpus = await _corpus(stack, db, responses)
    assert _places(corpus, _forms_of(tokens[0])) == set()
    # The same search does find what is meant to be there: the WABA id is in topics, tables and responses.
    control = _places(corpus, [meta.waba_id.encode()])
    assert {"topic signup.results", "table whatsapp_accounts", "response /v1/whatsapp/connection"} <= control


def _places(corpus: dict[str, list[bytes]], needles: list[bytes]) -> set[str]:
    """The places of ``corpus`` where any of ``needles`` occurs."""
    return {place for place, values in corpus.items() if any(n in v for v in values for n in needles)}


async def _corpus(stack: LocalStack, db: AsyncEngine, responses: list[httpx.Response]) -> dict[str, list[bytes]]:
    """Everything Aerostic keeps or said, by place: topics, tables, Redis values, its logs, the responses."""
    corpus: dict[str, list[bytes]] = {}
    consumer = Consumer({"bootstrap.servers": stack.kafka, "group.id": "test-secrecy", "log_level": 3,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10).topics
        consumer.assign([TopicPartition(spec.name, p, OFFSET_BEGINNING) for spec in CATALOGUE
                         for p in metadata[spec.name].partitions])
        while (msg := consumer.poll(2.0)) is not None:
            if not msg.error():
                corpus.setdefault(f"topic {msg.topic()}", []).append((msg.key() or b"") + b" " + (msg.value() or b""))
    finally:
        consumer.close()
    tables = [r.table_name for r in await rows(db, "SELECT table_name FROM information_schema.tables "
                                                   "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
    assert {"whatsapp_accounts", "phone_numbers", "signups", "messages"} <= set(tables)
    for table in tables:
        lines = await rows(db, f'SELECT CAST(t AS text) AS line FROM "{table}" t')  # noqa: S608 - catalogue names
        corpus[f"table {table}"] = [row.line.encode() for row in lines]
    redis = Redis.from_url(stack.redis_url)
    try:
        async for key in redis.scan_iter(count=1000):
            kind = (await redis.type(key)).decode()
            if kind == "string":
                corpus[f"redis {key!r}"] = [await redis.get(key) or b""]
            elif kind == "hash":
                corpus[f"redis {key!r}"] = [b"%s=%s" % kv for kv in (await redis.hgetall(key)).items()]
    finally:
        await redis.aclose()
    for log in Path(stack.log_dir).glob("*.log"):
        if not log.name.startswith("metasim"):  # the simulator plays Meta, which issued the token
            corpus[f"log {log.name}"] = [log.read_bytes()]
    for response in responses:
        corpus.setdefault(f"response {response.url.path}", []).append(
            response.content + str(response.headers).encode())
    return corpus


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_only_the_dispatcher_holds_the_vault_keys(stack: LocalStack) -> None:
    holders = {name for name, child in stack.children.items()
               if child.alive() and "AEROSTIC_VAULT_KEYS" in _environ(child.pid)}
    running = {name for name, child in stack.children.items() if child.alive()}
    assert {"ingress", "streams", "projector", "dispatcher"} <= running
    assert holders == {name for name in running if name.startswith("dispatcher")}
    assert {name for name in running if "AEROSTIC_META_APP_SECRET" in _environ(stack.children[name].pid)} == holders


def test_other_processes_cannot_decrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEROSTIC_VAULT_KEYS", VAULT_KEYS)
    monkeypatch.setenv("AEROSTIC_ENVIRONMENT", "test")
    for kind in (IngressSettings, StreamsSettings, ProjectorSettings):
        assert "vault_keys" not in kind.model_fields and not hasattr(kind(), "vault_keys")
    assert DispatcherSettings().vault_keys.get_secret_value() == VAULT_KEYS
    with pytest.raises(VaultError):
        Vault.from_spec("")
    ciphertext, key_id = Vault.from_spec(VAULT_KEYS).encrypt("EAAG-secret", aad="W1")
    with pytest.raises(VaultError):
        Vault.from_spec("it-1:" + "A" * 43 + "=").decrypt(ciphertext, key_id, aad="W1")
