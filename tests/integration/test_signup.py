"""Embedded Signup end to end: ingress start and callback, the simulator's dialog and Graph endpoints,
the dispatcher's exchange and discovery, PostgreSQL, the directory and the console's view."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.oauth_state import State, binding_of, sign, verify
from api.signup import BROWSER_COOKIE
from schemas.catalogue import SIGNUP_REQUESTS, TENANTS_DIRECTORY
from schemas.events import DirectoryEntry
from schemas.signup import SignupRequest
from stack.launcher import LocalStack
from stack.signup_driver import approve, run_dialog, started_browser, with_cookie
from tests.integration.helpers import (
    Admin,
    AdminFactory,
    MetaAccount,
    MetaAccountFactory,
    connection,
    rows,
    scalar,
    settled_connection,
    topic_records,
    wait_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEV_STATE_SECRET = b"aerostic-dev-state-secret"  # the stack's ingress runs with the development default


async def _connect(api: httpx.AsyncClient, admin: Admin, meta: MetaAccount) -> dict[str, Any]:
    """Approve Meta's dialog as ``meta`` for ``admin``'s tenant; the connection once it is connected."""
    approval = await approve(api, admin.auth, email=meta.email, password=meta.password)
    view = await settled_connection(api, admin, approval.attempt_id or "")
    assert view["state"] == "connected", view
    return view


async def test_signup_connects_the_shared_waba_and_its_numbers(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        admin_factory: AdminFactory, meta_account_factory: MetaAccountFactory) -> None:
    admin = await admin_factory()
    meta = await meta_account_factory(numbers=2, tier="TIER_10K", level="HIGH", quality="YELLOW")
    approval = await approve(api, admin.auth, email=meta.email, password=meta.password)
    assert approval.response.status_code == 303, approval.response.text
    attempt_id = approval.attempt_id
    assert attempt_id and approval.response.headers["location"] == f"/console?attempt={attempt_id}"

    view = await settled_connection(api, admin, attempt_id)
    assert view["state"] == "connected", view
    assert view["attempt"]["status"] == "connected" and view["attempt"]["error_message"] is None
    assert [(a["waba_id"], a["business_id"], a["status"]) for a in view["accounts"]] == [
        (meta.waba_id, meta.business_id, "connected")]
    assert sorted(n["phone_number_id"] for n in view["numbers"]) == sorted(meta.numbers)
    for number in view["numbers"]:
        assert (number["quality_rating"], number["messaging_limit_tier"], number["throughput_mps"]) == (
            "YELLOW", "TIER_10K", 1000)
        assert number["verified_name"] == "Shop" and number["status"] == "connected"

    # Meta's side: subscribed once for our app, every pending number registered with a 6-digit PIN.
    subscriptions = (await sim.get("/_sim/signup/subscriptions")).json()
    assert subscriptions.get(meta.waba_id), subscriptions
    registrations = (await sim.get("/_sim/signup/registrations")).json()
    for pnid in meta.numbers:
        assert registrations[pnid]["count"] == 1 and len(registrations[pnid]["pin"]) == 6

    # Stored encrypted, with the tier the numbers' messaging limit implies.
    account = (await rows(db, "SELECT tenant_id, token_ciphertext, token_key_id, tier_limit FROM whatsapp_accounts "
                              "WHERE waba_id = :w", w=meta.waba_id))[0]
    assert str(account.tenant_id) == admin.tenant_id and account.token_key_id == "it-1"
    assert account.tier_limit == 10_000
    issued = [t for t in (await sim.get("/_sim/signup/tokens")).json()["tokens"] if meta.waba_id in t["waba_ids"]]
    assert len(issued) == 1 and issued[0]["token"].encode() not in bytes(account.token_ciphertext)

    # The router learns the numbers from the directory.
    entries = [DirectoryEntry.decode(v) for v in topic_records(stack, TENANTS_DIRECTORY.name)]
    assert {e.phone_number_id for e in entries if e.tenant_id == admin.tenant_id} == set(meta.numbers)


async def test_a_connected_number_receives_and_sends(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
        admin_factory: AdminFactory, meta_account_factory: MetaAccountFactory) -> None:
    admin = await admin_factory()
    meta = await meta_account_factory()
    await _connect(api, admin, meta)
    pnid, customer = meta.numbers[0], "16505550199"

    wrote = await sim.post("/_sim/customers/messages", json={"phone_number_id": pnid, "from": customer,
                                                             "type": "text", "text": "my order?"})
    assert wrote.status_code == 200, wrote.text
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND direction = 'inbound'",
                                  t=admin.tenant_id), what="the inbound message routed to the new tenant")
    sent = await api.post("/v1/messages", headers=admin.auth, json={
        "to": customer, "type": "text", "text": {"body": "welcome"}})
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]

    async def read() -> bool:
        answer = await api.get(f"/v1/messages/{message_id}", headers=admin.auth)
        return answer.json()["status"] == "read"

    await wait_for(read, what="the reply to be read")
    calls = (await sim.get("/_sim/requests", params={"phone_number_id": pnid})).json()
    calls = calls["data"]
    issued = [t["token"] for t in (await sim.get("/_sim/signup/tokens")).json()["tokens"]
              if meta.waba_id in t["waba_ids"]]
    assert [c["headers"].get("authorization") for c in calls] == [f"Bearer {issued[0]}"]


async def test_cancel_changes_nothing(api: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
                                      meta_account_factory: MetaAccountFactory) -> None:
    admin = await admin_factory()
    meta = await meta_account_factory()
    approval = await approve(api, admin.auth, email=meta.email, password=meta.password, decision="cancel")
    assert parse_qs(urlsplit(approval.callback_url).query)["error"] == ["access_denied"]
    assert approval.response.status_code == 200
    assert "You cancelled the connection" in approval.response.text
    assert await scalar(db, "SELECT count(*) FROM signups WHERE tenant_id = :t", t=admin.tenant_id) == 0
    assert (await connection(api, admin))["state"] == "not_connected"


async def _failed(api: httpx.AsyncClient, admin_factory: AdminFactory, meta_account_factory: MetaAccountFactory,
                  sim: httpx.AsyncClient, db: AsyncEngine, **approve_args: str) -> tuple[dict[str, Any], MetaAccount]:
    admin = await admin_factory()
    meta = await meta_account_factory()
    approval = await approve(api, admin.auth, email=meta.email, password=meta.password, **approve_args)
    view = await settled_connection(api, admin, approval.attempt_id or "")
    assert view["state"] == "failed", view
    assert view["accounts"] == [] and view["numbers"] == []
    assert await scalar(db, "SELECT count(*) FROM whatsapp_accounts WHERE tenant_id = :t", t=admin.tenant_id) == 0
    assert await scalar(db, "SELECT count(*) FROM phone_numbers WHERE tenant_id = :t", t=admin.tenant_id) == 0
    return view["attempt"], meta


async def test_no_waba_shared_is_reported_and_nothing_is_stored(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    attempt, _ = await _failed(api, admin_factory, meta_account_factory, sim, db, waba_id="")
    assert attempt["step"] == "debug_token"
    assert "No WhatsApp Business Account was shared" in attempt["error_message"]


async def test_a_failed_subscription_leaves_nothing_half_connected(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    fault = await sim.post("/_sim/signup/faults", json={"step": "subscribed_apps", "code": 200, "http_status": 403,
                                                         "message": "(#200) Permissions error", "times": 1})
    assert fault.status_code < 300, fault.text
    try:
        attempt, meta = await _failed(api, admin_factory, meta_account_factory, sim, db)
    finally:
        await sim.delete("/_sim/signup/faults")
    assert (attempt["step"], attempt["error_code"]) == ("subscribe", 200)
    assert "Permissions error" in attempt["error_message"]
    registrations = (await sim.get("/_sim/signup/registrations")).json()
    assert meta.numbers[0] not in registrations  # it stopped before registering


async def test_a_failed_registration_undoes_the_subscription(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    await sim.post("/_sim/signup/faults", json={"step": "register", "code": 133005, "http_status": 400,
                                                "message": "Two step verification PIN Mismatch", "times": 1})
    try:
        attempt, meta = await _failed(api, admin_factory, meta_account_factory, sim, db)
    finally:
        await sim.delete("/_sim/signup/faults")
    assert (attempt["step"], attempt["error_code"]) == ("register", 133005)
    assert not (await sim.get("/_sim/signup/subscriptions")).json().get(meta.waba_id)


async def test_an_expired_code_fails_the_exchange(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    admin = await admin_factory()
    meta = await meta_account_factory()
    start = await api.get("/whatsapp/embedded/start", headers=admin.auth)
    # Drive the dialog up to Meta's redirect, age the code, then come back.
    callback_url = await run_dialog(start.headers["location"], email=meta.email, password=meta.password)
    assert (await sim.post("/_sim/signup/expire-codes")).status_code < 300
    callback = await api.get(callback_url, headers=with_cookie(admin.auth, started_browser(start)))
    assert callback.status_code == 303
    attempt_id = parse_qs(urlsplit(callback.headers["location"]).query)["attempt"][0]
    view = await settled_connection(api, admin, attempt_id)
    assert (view["attempt"]["step"], view["attempt"]["error_code"]) == ("exchange", 100)
    assert "expired" in view["attempt"]["error_message"]
    assert await scalar(db, "SELECT count(*) FROM whatsapp_accounts WHERE tenant_id = :t", t=admin.tenant_id) == 0


async def test_reconnecting_replaces_the_token_and_keeps_numbers_and_history(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    admin = await admin_factory()
    meta = await meta_account_factory()
    await _connect(api, admin, meta)
    wrote = await sim.post("/_sim/customers/messages", json={"phone_number_id": meta.numbers[0],
                                                             "from": "16505550123", "type": "text", "text": "order?"})
    assert wrote.status_code == 200
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t", t=admin.tenant_id),
                   what="history before the reconnection")
    before = (await rows(db, "SELECT token_ciphertext, connected_at FROM whatsapp_accounts WHERE waba_id = :w",
                         w=meta.waba_id))[0]
    # Meta disconnects the account (190 or account_update): it is marked, then the tenant reconnects.
    async with db.begin() as conn:
        await conn.execute(text("UPDATE whatsapp_accounts SET status = 'needs_reauth' WHERE waba_id = :w"),
                           {"w": meta.waba_id})
    assert (await connection(api, admin))["state"] == "needs_reauth"

    second = await approve(api, admin.auth, email=meta.email, password=meta.password)
    view = await settled_connection(api, admin, second.attempt_id or "")
    assert view["state"] == "connected" and [n["phone_number_id"] for n in view["numbers"]] == meta.numbers
    after = (await rows(db, "SELECT token_ciphertext, connected_at, status FROM whatsapp_accounts "
                            "WHERE waba_id = :w", w=meta.waba_id))[0]
    assert bytes(after.token_ciphertext) != bytes(before.token_ciphertext)
    assert after.connected_at == before.connected_at and after.status == "connected"
    assert await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t", t=admin.tenant_id) == 1
    result = await rows(db, "SELECT reconnected FROM signups WHERE attempt_id = :a", a=second.attempt_id)
    assert result[0].reconnected is True


async def test_a_waba_of_another_tenant_is_refused(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    owner, other = await admin_factory("owner"), await admin_factory("intruder")
    meta = await meta_account_factory()
    await _connect(api, owner, meta)
    second = await approve(api, other.auth, email=meta.email, password=meta.password)
    view = await settled_connection(api, other, second.attempt_id or "")
    assert view["state"] == "failed" and view["attempt"]["step"] == "store"
    assert "another Aerostic account" in view["attempt"]["error_message"]
    assert await scalar(db, "SELECT count(*) FROM phone_numbers WHERE tenant_id = :t", t=other.tenant_id) == 0
    assert (await connection(api, owner))["state"] == "connected"


# --- the state -----------------------------------------------------------------------------


async def _requests_for(stack: LocalStack, tenant_id: str) -> list[SignupRequest]:
    return [r for r in (SignupRequest.decode(v) for v in topic_records(stack, SIGNUP_REQUESTS.name))
            if r.tenant_id == tenant_id]


async def test_a_replayed_state_is_refused(api: httpx.AsyncClient, stack: LocalStack, admin_factory: AdminFactory,
                                           meta_account_factory: MetaAccountFactory) -> None:
    admin = await admin_factory()
    meta = await meta_account_factory()
    approval = await approve(api, admin.auth, email=meta.email, password=meta.password)
    assert approval.response.status_code == 303
    again = await api.get(approval.callback_url, headers=with_cookie(admin.auth, approval.browser_cookie))
    assert again.status_code == 400 and "already used" in again.text
    elsewhere = await api.get(approval.callback_url)
    assert elsewhere.status_code == 403 and "started in another browser" in elsewhere.text
    assert len(await _requests_for(stack, admin.tenant_id)) == 1


@pytest.mark.parametrize("case", ["forged", "expired", "garbage", "missing"])
async def test_a_bad_state_is_refused(api: httpx.AsyncClient, stack: LocalStack, admin_factory: AdminFactory,
                                      case: str) -> None:
    admin = await admin_factory()
    browser = f"browser-{case}-{time.time_ns()}"
    state = State(tenant_id=admin.tenant_id, nonce=f"n-{case}", expires_at=int(time.time()) + 600, actor=None,
                  binding=binding_of(browser))
    raw = {"forged": sign(b"not-the-ingress-secret", state),
           "expired": sign(DEV_STATE_SECRET, State(admin.tenant_id, "n-old", int(time.time()) - 1, None,
                                                   binding_of(browser))),
           "garbage": "abc.def", "missing": ""}[case]
    answer = await api.get("/meta/callback", params={"code": "AQ-some-code", "state": raw} if raw else
                           {"code": "AQ-some-code"}, headers=with_cookie(admin.auth, f"{BROWSER_COOKIE}={browser}"))
    assert answer.status_code == 400, answer.text
    assert "WhatsApp was not connected" in answer.text
    assert await _requests_for(stack, admin.tenant_id) == []


async def test_a_valid_state_never_issued_is_refused(api: httpx.AsyncClient, stack: LocalStack,
                                                     admin_factory: AdminFactory) -> None:
    admin = await admin_factory()
    browser = f"browser-{time.time_ns()}"
    raw = sign(DEV_STATE_SECRET, State(admin.tenant_id, "never-issued", int(time.time()) + 600, None,
                                       binding_of(browser)))
    answer = await api.get("/meta/callback", params={"code": "AQ-x", "state": raw},
                           headers=with_cookie(admin.auth, f"{BROWSER_COOKIE}={browser}"))
    assert answer.status_code == 400 and "already used" in answer.text
    assert await _requests_for(stack, admin.tenant_id) == []


async def test_another_tenants_state_is_refused(api: httpx.AsyncClient, stack: LocalStack,
                                                admin_factory: AdminFactory,
                                                meta_account_factory: MetaAccountFactory) -> None:
    victim, attacker = await admin_factory("victim"), await admin_factory("attacker")
    start = await api.get("/whatsapp/embedded/start", headers=attacker.auth)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    # Even with the attacker's browser cookie, the victim's session is not the state's tenant.
    answer = await api.get("/meta/callback", params={"code": "AQ-attacker", "state": state},
                           headers=with_cookie(victim.auth, started_browser(start)))
    assert answer.status_code == 403 and "another account" in answer.text
    assert await _requests_for(stack, victim.tenant_id) == []
    assert await _requests_for(stack, attacker.tenant_id) == []


@pytest.mark.parametrize("victim_session", ["none", "own tenant"])
async def test_a_dialog_url_sent_to_someone_else_connects_nothing(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack,
        admin_factory: AdminFactory, meta_account_factory: MetaAccountFactory, victim_session: str) -> None:
    """The sender starts the flow and sends Meta's dialog URL to a business owner, who approves it in their own
    browser: Meta sends that browser to the callback with a code for the owner's WABA and the sender's state.
    Without the sender's browser cookie it is refused, so the owner's WABA never lands in the sender's tenant."""
    sender = await admin_factory("sender")
    owner_meta = await meta_account_factory()
    start = await api.get("/whatsapp/embedded/start", headers=sender.auth)
    assert start.status_code == 302
    callback_url = await run_dialog(start.headers["location"], email=owner_meta.email, password=owner_meta.password)
    assert parse_qs(urlsplit(callback_url).query)["code"], callback_url

    owner_browser = {} if victim_session == "none" else (await admin_factory("owner")).auth
    answer = await api.get(callback_url, headers=owner_browser)
    assert answer.status_code == 403 and "started in another browser" in answer.text
    forged = await api.get(callback_url, headers=with_cookie(owner_browser, f"{BROWSER_COOKIE}=a-guessed-value"))
    assert forged.status_code == 403 and "started in another browser" in forged.text

    assert await _requests_for(stack, sender.tenant_id) == []
    assert (await connection(api, sender))["state"] == "not_connected"
    assert await scalar(db, "SELECT count(*) FROM whatsapp_accounts WHERE waba_id = :w", w=owner_meta.waba_id) == 0
    issued = (await sim.get("/_sim/signup/tokens")).json()["tokens"]
    assert not [t for t in issued if owner_meta.waba_id in t["waba_ids"]]  # the code was never exchanged


async def test_the_callback_needs_the_starting_browser_and_a_session(
        api: httpx.AsyncClient, stack: LocalStack, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    """The same callback URL is refused without the cookie or without a session, and then works with both
    (a refusal does not use the state up)."""
    admin = await admin_factory()
    meta = await meta_account_factory()
    start = await api.get("/whatsapp/embedded/start", headers=admin.auth)
    callback_url = await run_dialog(start.headers["location"], email=meta.email, password=meta.password)
    browser = started_browser(start)

    no_cookie = await api.get(callback_url, headers=admin.auth)
    assert no_cookie.status_code == 403 and "started in another browser" in no_cookie.text
    no_session = await api.get(callback_url, headers={"Cookie": browser})
    assert no_session.status_code == 401 and "Sign in to Aerostic in this browser" in no_session.text
    bad_session = await api.get(callback_url, headers={"Cookie": browser, "Authorization": "Bearer aer_nope"})
    assert bad_session.status_code == 401
    assert await _requests_for(stack, admin.tenant_id) == []

    both = await api.get(callback_url, headers=with_cookie(admin.auth, browser))
    assert both.status_code == 303, both.text
    assert [r.attempt_id for r in await _requests_for(stack, admin.tenant_id)] == [
        parse_qs(urlsplit(both.headers["location"]).query)["attempt"][0]]


async def test_start_binds_the_state_to_a_host_only_cookie(api: httpx.AsyncClient,
                                                           admin_factory: AdminFactory) -> None:
    admin = await admin_factory()
    start = await api.get("/whatsapp/embedded/start", headers=admin.auth)
    header = next(h for h in start.headers.get_list("set-cookie") if h.startswith(f"{BROWSER_COOKIE}="))
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"secure", "httponly", "path", "samesite", "max-age"} <= attributes and "domain" not in attributes
    assert "path=/;" in header.lower() + ";" and "samesite=lax" in header.lower()
    secret = started_browser(start).split("=", 1)[1]
    assert len(secret) >= 40
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    assert secret not in state
    assert verify(DEV_STATE_SECRET, state).binding == binding_of(secret)

    # The same browser starting again keeps its secret (a second tab does not undo the first).
    again = await api.get("/whatsapp/embedded/start", headers=with_cookie(admin.auth, started_browser(start)))
    assert started_browser(again) == started_browser(start)
    fresh = await api.get("/whatsapp/embedded/start", headers=admin.auth)
    assert started_browser(fresh) != started_browser(start)


async def test_start_needs_a_tenant_admin(api: httpx.AsyncClient, admin_factory: AdminFactory) -> None:
    admin = await admin_factory()
    assert (await api.get("/whatsapp/embedded/start")).status_code == 401
    other = await api.get("/whatsapp/embedded/start", params={"tenant_id": "someone-else"}, headers=admin.auth)
    assert other.status_code == 403
    start = await api.get("/whatsapp/embedded/start", headers=admin.auth)
    assert start.status_code == 302
    dialog = urlsplit(start.headers["location"])
    params = {k: v[0] for k, v in parse_qs(dialog.query).items()}
    assert dialog.path == "/v23.0/dialog/oauth"
    assert params["response_type"] == "code" and params["override_default_response_type"] == "true"
    assert params["client_id"] == "100000000000001" and params["config_id"] == "200000000000001"
    assert params["redirect_uri"].endswith("/meta/callback") and '"sessionInfoVersion":"3"' in params["extras"]


async def test_a_held_send_goes_out_once_after_reconnecting(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    """Meta revokes the token (190): the account needs re-auth and sends wait; reconnecting releases them."""
    admin = await admin_factory()
    meta = await meta_account_factory()
    await _connect(api, admin, meta)
    pnid, customer = meta.numbers[0], "16505550777"
    assert (await sim.post("/_sim/customers/messages", json={"phone_number_id": pnid, "from": customer,
                                                             "type": "text", "text": "my order?"})).status_code == 200
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t", t=admin.tenant_id),
                   what="the customer's message")
    old = [t["token"] for t in (await sim.get("/_sim/signup/tokens")).json()["tokens"] if meta.waba_id in t["waba_ids"]]
    assert (await sim.post("/_sim/tokens/revoke", json={"token": old[0]})).status_code < 300
    sent = await api.post("/v1/messages", headers=admin.auth, json={"to": customer, "type": "text",
                                                                    "text": {"body": "held until reconnected"}})
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    view = await wait_for(lambda: _state(api, admin, "needs_reauth"), what="the account to need re-auth")
    assert view["state"] == "needs_reauth"
    assert (await api.get(f"/v1/messages/{message_id}", headers=admin.auth)).json()["status"] == "queued"

    second = await approve(api, admin.auth, email=meta.email, password=meta.password)
    assert (await settled_connection(api, admin, second.attempt_id or ""))["state"] == "connected"

    async def read() -> bool:
        return (await api.get(f"/v1/messages/{message_id}", headers=admin.auth)).json()["status"] == "read"

    await wait_for(read, what="the held message to be sent and read")
    fresh = [t["token"] for t in (await sim.get("/_sim/signup/tokens")).json()["tokens"]
             if meta.waba_id in t["waba_ids"] and t["token"] != old[0]]
    accepted = [c for c in (await sim.get("/_sim/requests", params={"phone_number_id": pnid})).json()["data"]
                if c["status"] == 200]
    assert [c["headers"]["authorization"] for c in accepted] == [f"Bearer {fresh[0]}"]


async def _state(api: httpx.AsyncClient, admin: Admin, state: str) -> dict[str, Any] | None:
    view = await connection(api, admin)
    return view if view["state"] == state else None


async def test_a_failed_attempt_on_another_tenants_waba_keeps_its_subscription(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, admin_factory: AdminFactory,
        meta_account_factory: MetaAccountFactory) -> None:
    """Another tenant's attempt on a connected WABA is refused, and its clean-up never unsubscribes the
    WABA (which would cut the owner's webhooks at Meta)."""
    owner, intruder = await admin_factory("subscribed owner"), await admin_factory("subscribed intruder")
    meta = await meta_account_factory()
    await _connect(api, owner, meta)
    assert (await sim.get("/_sim/signup/subscriptions")).json().get(meta.waba_id)
    attempt = await approve(api, intruder.auth, email=meta.email, password=meta.password)
    view = await settled_connection(api, intruder, attempt.attempt_id or "")
    assert (view["state"], view["attempt"]["step"]) == ("failed", "store")
    assert (await sim.get("/_sim/signup/subscriptions")).json().get(meta.waba_id), "the owner's WABA was unsubscribed"
    assert await scalar(db, "SELECT tenant_id::text FROM whatsapp_accounts WHERE waba_id = :w",
                        w=meta.waba_id) == owner.tenant_id
