"""Console users, sessions, API key management and the platform admin over HTTP against the real ingress."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.throttle import PAIR_BOUND
from tenants.users import create_user
from tests.integration.helpers import PLATFORM_KEY, TEST_SCRYPT_N, BusinessFactory, fresh_id, scalar

PLATFORM = {"Authorization": f"Bearer {PLATFORM_KEY}"}
PASSWORD = "a long enough password"


@dataclass
class Account:
    tenant_id: str
    admin_id: str
    email: str


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_email(role: str = "admin") -> str:
    return f"{role}-{uuid.uuid4().hex[:12]}@Example.com"


async def new_tenant(api: httpx.AsyncClient, name: str = "console tenant") -> Account:
    email = new_email()
    created = await api.post("/admin/tenants", headers=PLATFORM,
                             json={"name": name, "admin_email": email, "admin_password": PASSWORD})
    assert created.status_code == 201, created.text
    return Account(created.json()["tenant_id"], created.json()["admin_user_id"], email)


async def login(api: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await api.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def test_platform_admin_creates_a_tenant_whose_admin_manages_it(api: httpx.AsyncClient) -> None:
    account = await new_tenant(api, "managed")
    listed, cursor = [], None
    while True:  # oldest first, in pages: the new tenant is on the last
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await api.get("/admin/tenants", headers=PLATFORM, params=params)
        assert page.status_code == 200, page.text
        listed += page.json()["items"]
        if (cursor := page.json()["next_cursor"]) is None:
            break
    assert {"id": account.tenant_id, "name": "managed"}.items() <= next(
        t for t in listed if t["id"] == account.tenant_id).items()
    assert len({t["id"] for t in listed}) == len(listed)

    response = await api.post("/v1/auth/login", json={"email": account.email.upper(), "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token"].startswith("aes_") and len(body["token"]) == 47
    assert body["user"] == {"id": account.admin_id, "email": account.email.lower(), "role": "admin",
                            "tenant_id": account.tenant_id}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"aerostic_session={body['token']};")
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert flag.lower() in cookie.lower(), cookie
    assert PASSWORD not in response.text

    # The cookie alone authenticates (sent explicitly: the test client keeps Secure cookies off plain http).
    me = await api.get("/v1/me", headers={"Cookie": f"aerostic_session={body['token']}"})
    assert me.json() == {"tenant_id": account.tenant_id, "role": "admin", "user_id": account.admin_id,
                         "key_id": None}

    auth = bearer(body["token"])
    agent = await api.post("/v1/users", headers=auth, json={"email": new_email("agent"), "password": PASSWORD,
                                                            "role": "agent"})
    assert agent.status_code == 201, agent.text
    assert agent.json()["role"] == "agent" and agent.json()["tenant_id"] == account.tenant_id
    users = (await api.get("/v1/users", headers=auth)).json()["items"]
    assert {u["id"] for u in users} == {account.admin_id, agent.json()["id"]}
    assert all("password" not in str(u) and "scrypt" not in str(u) for u in users)
    taken = await api.post("/v1/users", headers=auth, json={"email": account.email, "password": PASSWORD,
                                                            "role": "agent"})
    assert taken.status_code == 409
    short = await api.post("/v1/users", headers=auth, json={"email": new_email(), "password": "short",
                                                            "role": "agent"})
    assert short.status_code == 422

    created = await api.post("/v1/api-keys", headers=auth, json={"name": "backend"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith(f"aer_{created.json()['prefix']}_")
    keys = await api.get("/v1/api-keys", headers=auth)
    assert [k["prefix"] for k in keys.json()["items"]] == [created.json()["prefix"]]
    assert key not in keys.text and key[13:] not in keys.text
    by_key = (await api.get("/v1/me", headers=bearer(key))).json()
    assert by_key == {"tenant_id": account.tenant_id, "role": "admin", "user_id": None,
                      "key_id": created.json()["id"]}


async def test_agent_may_not_administer(api: httpx.AsyncClient) -> None:
    account = await new_tenant(api, "with agent")
    admin = bearer(await login(api, account.email))
    email = new_email("agent")
    made = await api.post("/v1/users", headers=admin, json={"email": email, "password": PASSWORD, "role": "agent"})
    assert made.status_code == 201
    agent = bearer(await login(api, email))
    me = await api.get("/v1/me", headers=agent)
    assert me.status_code == 200 and me.json()["role"] == "agent" and me.json()["user_id"] == made.json()["id"]
    for method, path, body in [("GET", "/v1/users", None), ("GET", "/v1/api-keys", None),
                               ("POST", "/v1/api-keys", {"name": "mine"}),
                               ("POST", "/v1/users", {"email": new_email(), "password": PASSWORD, "role": "admin"}),
                               ("DELETE", f"/v1/api-keys/{uuid.uuid4()}", None)]:
        response = await api.request(method, path, headers=agent, json=body)
        assert response.status_code == 403, (method, path, response.text)


async def test_logout_revokes_the_session(api: httpx.AsyncClient) -> None:
    account = await new_tenant(api, "logout")
    token = await login(api, account.email)
    assert (await api.get("/v1/me", headers=bearer(token))).status_code == 200
    out = await api.post("/v1/auth/logout", headers=bearer(token))
    assert out.status_code == 204
    assert 'aerostic_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    again = await api.get("/v1/me", headers=bearer(token))
    assert again.status_code == 401 and token not in again.text
    assert (await api.get("/v1/me", headers={"Cookie": f"aerostic_session={token}"})).status_code == 401


async def test_wrong_credentials_get_one_answer_and_are_throttled(api: httpx.AsyncClient) -> None:
    account = await new_tenant(api, "throttled")
    unknown = await api.post("/v1/auth/login", json={"email": new_email(), "password": PASSWORD})
    wrong = await api.post("/v1/auth/login", json={"email": account.email, "password": "not the password"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    for _ in range(4):  # the 2nd to 5th failures
        response = await api.post("/v1/auth/login", json={"email": account.email, "password": "still wrong!"})
        assert response.status_code == 401
    sixth = await api.post("/v1/auth/login", json={"email": account.email, "password": "still wrong!"})
    assert sixth.status_code == 429
    assert 0 < int(sixth.headers["retry-after"]) <= 15 * 60
    locked = await api.post("/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    assert locked.status_code == 429  # even the right password waits for the window to end


def address() -> dict[str, str]:
    """A client address of its own (the ingress trusts X-Forwarded-For from the loopback proxy: the tests)."""
    return {"X-Forwarded-For": f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"}


async def test_concurrent_wrong_logins_are_counted_before_the_check(api: httpx.AsyncClient) -> None:
    """50 wrong passwords at once from one address: only the first PAIR_BOUND are checked (401), the rest are
    refused unchecked (429); the account's owner, from another address, still gets in."""
    account = await new_tenant(api, "guessed")
    attacker = address()
    answers = await asyncio.gather(*(api.post("/v1/auth/login", headers=attacker, json={
        "email": account.email, "password": f"guess number {i}"}) for i in range(50)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] * PAIR_BOUND + [429] * (50 - PAIR_BOUND), statuses
    assert all(0 < int(a.headers["retry-after"]) <= 15 * 60 for a in answers if a.status_code == 429)
    right_from_attacker = await api.post("/v1/auth/login", headers=attacker,
                                         json={"email": account.email, "password": PASSWORD})
    assert right_from_attacker.status_code == 429  # not even checked

    owner = address()
    assert owner != attacker
    response = await api.post("/v1/auth/login", headers=owner, json={"email": account.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    for _ in range(PAIR_BOUND + 2):  # a success gives its attempt back: the owner is never throttled by logging in
        again = await api.post("/v1/auth/login", headers=owner, json={"email": account.email, "password": PASSWORD})
        assert again.status_code == 200, again.text


async def _stored_cost(db: AsyncEngine, email: str) -> list[str]:
    stored = await scalar(db, "SELECT password_hash FROM users WHERE email = :e", e=email.lower())
    return str(stored).split("$")[1:4]


async def test_an_older_password_hash_is_replaced_at_login(api: httpx.AsyncClient, db: AsyncEngine) -> None:
    """The stack hashes at TEST_SCRYPT_N; a user stored at a lower cost gets a fresh hash on a right login only."""
    account = await new_tenant(api, "rehash")
    old, strong = new_email("agent"), new_email("agent")
    async with db.begin() as conn:
        await create_user(conn, tenant_id=account.tenant_id, email=old, password=PASSWORD, role="agent",
                          scrypt_n=TEST_SCRYPT_N // 4)
        await create_user(conn, tenant_id=account.tenant_id, email=strong, password=PASSWORD, role="agent",
                          scrypt_n=TEST_SCRYPT_N * 2)
    before = await scalar(db, "SELECT password_hash FROM users WHERE email = :e", e=old.lower())
    assert await _stored_cost(db, old) == [str(TEST_SCRYPT_N // 4), "8", "1"]

    wrong = await api.post("/v1/auth/login", headers=address(), json={"email": old, "password": "not it at all"})
    assert wrong.status_code == 401
    assert await scalar(db, "SELECT password_hash FROM users WHERE email = :e", e=old.lower()) == before

    await login(api, old)
    assert await _stored_cost(db, old) == [str(TEST_SCRYPT_N), "8", "1"]
    rehashed = await scalar(db, "SELECT password_hash FROM users WHERE email = :e", e=old.lower())
    await login(api, old)  # the fresh hash verifies, and is kept
    assert await scalar(db, "SELECT password_hash FROM users WHERE email = :e", e=old.lower()) == rehashed

    await login(api, strong)  # never rehashed down
    assert await _stored_cost(db, strong) == [str(TEST_SCRYPT_N * 2), "8", "1"]


async def test_admin_cannot_revoke_another_tenants_key(api: httpx.AsyncClient) -> None:
    a, b = await new_tenant(api, "tenant a"), await new_tenant(api, "tenant b")
    a_auth, b_auth = bearer(await login(api, a.email)), bearer(await login(api, b.email))
    b_key = (await api.post("/v1/api-keys", headers=b_auth, json={"name": "b's"})).json()
    assert (await api.delete(f"/v1/api-keys/{b_key['id']}", headers=a_auth)).status_code == 404
    assert (await api.get("/v1/me", headers=bearer(b_key["key"]))).status_code == 200
    assert b_key["prefix"] not in (await api.get("/v1/api-keys", headers=a_auth)).text
    assert (await api.delete(f"/v1/api-keys/{b_key['id']}", headers=b_auth)).status_code == 204
    assert (await api.get("/v1/me", headers=bearer(b_key["key"]))).status_code == 401
    assert (await api.delete("/v1/api-keys/not-a-uuid", headers=b_auth)).status_code == 404


async def test_platform_key_and_tenant_credentials_stay_apart(api: httpx.AsyncClient) -> None:
    body = {"name": "nope", "admin_email": new_email(), "admin_password": PASSWORD}
    assert (await api.post("/admin/tenants", json=body)).status_code == 401
    assert (await api.post("/admin/tenants", json=body, headers=bearer(PLATFORM_KEY + "x"))).status_code == 401
    assert (await api.get("/admin/tenants", headers=bearer("wrong"))).status_code == 401
    account = await new_tenant(api, "apart")
    token = await login(api, account.email)
    key = (await api.post("/v1/api-keys", headers=bearer(token), json={"name": "k"})).json()["key"]
    for credential in (token, key):
        assert (await api.get("/admin/tenants", headers=bearer(credential))).status_code == 401
    assert (await api.get("/v1/me", headers=PLATFORM)).status_code == 401


async def test_session_cannot_read_another_tenants_message(api: httpx.AsyncClient,
                                                           business_factory: BusinessFactory) -> None:
    theirs = await business_factory("message owner")
    sent = await api.post("/v1/messages", headers=theirs.auth,
                          json={"to": f"+{fresh_id()}", "type": "text", "text": {"body": "private"}})
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    assert (await api.get(f"/v1/messages/{message_id}", headers=theirs.auth)).status_code == 200
    mine = await new_tenant(api, "curious")
    token = await login(api, mine.email)
    assert (await api.get(f"/v1/messages/{message_id}", headers=bearer(token))).status_code == 404
    listing = await api.get(f"/v1/conversations/{sent.json()['conversation_key']}/messages", headers=bearer(token))
    assert listing.status_code == 404
