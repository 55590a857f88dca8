"""metasim.oauth and the /_sim/signup admin API: the code exchange, debug_token, seeding and inspection."""

from __future__ import annotations

import re

import pytest

from metasim.state import SimConfig
from tests.unit.metasim.conftest import (
    APP_ID,
    APP_TOKEN,
    EMAIL,
    REDIRECT,
    SECRET,
    SignupSim,
    account,
    graph_error,
)

MISMATCH = ("Error validating verification code. Please make sure your redirect_uri is identical to the one you "
            "used in the OAuth dialog request")


# --- the code exchange ---------------------------------------------------------------------------

async def test_exchange_issues_a_never_expiring_token_for_the_chosen_waba(signup: SignupSim) -> None:
    answer = await signup.exchange(await signup.code())
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type"} and body["token_type"] == "bearer"
    token = body["access_token"]
    assert re.fullmatch(r"EAAG[A-Za-z0-9]{180}", token)
    assert signup.sim.tokens[token] == {"W1"}
    listed = (await signup.client.get("/_sim/signup/tokens")).json()
    assert listed == {"tokens": [{"token": token, "waba_ids": ["W1"], "business_ids": ["B1"],
                                  "user_id": signup.sim.signup.users[EMAIL].id, "revoked": False}]}


async def test_exchange_without_redirect_uri_is_accepted(signup: SignupSim) -> None:
    code = await signup.code()
    answer = await signup.client.get("/v23.0/oauth/access_token",
                                     params={"client_id": APP_ID, "client_secret": SECRET, "code": code})
    assert answer.status_code == 200 and answer.json()["access_token"].startswith("EAAG")


async def test_a_code_works_once(signup: SignupSim) -> None:
    code = await signup.code()
    assert (await signup.exchange(code)).status_code == 200
    assert graph_error(await signup.exchange(code)) == (400, 100, 36009, "This authorization code has been used.")


@pytest.mark.parametrize(("params", "expected"), [
    ({"client_secret": "wrong"}, (400, 1, None, "Error validating client secret.")),
    ({"client_id": "42"}, (400, 101, None, "Error validating application. Invalid application ID.")),
])
async def test_bad_client_is_refused_and_keeps_the_code(signup: SignupSim, params: dict[str, str],
                                                        expected: tuple[int, int, int | None, str]) -> None:
    code = await signup.code()
    answer = await signup.exchange(code, **params)
    assert graph_error(answer) == expected and answer.json()["error"]["type"] == "OAuthException"
    assert (await signup.exchange(code)).status_code == 200


async def test_unknown_code(signup: SignupSim) -> None:
    assert graph_error(await signup.exchange("AQnope")) == (400, 100, 36008, "Invalid verification code format.")


async def test_mismatched_redirect_uri_consumes_the_code(signup: SignupSim) -> None:
    code = await signup.code()
    assert graph_error(await signup.exchange(code, redirect_uri=REDIRECT + "/other")) == (400, 100, 36008, MISMATCH)
    assert graph_error(await signup.exchange(code))[2] == 36009


async def test_expire_codes_admin(signup: SignupSim) -> None:
    code, used = await signup.code(), await signup.code()
    assert (await signup.exchange(used)).status_code == 200
    assert (await signup.client.post("/_sim/signup/expire-codes")).json() == {"expired": 1}
    assert graph_error(await signup.exchange(code)) == (400, 100, 36007, "This authorization code has expired.")


async def test_codes_expire_with_the_clock(signup: SignupSim) -> None:
    fresh, old = await signup.code(), await signup.code()
    signup.clock.at += 599.9
    assert (await signup.exchange(fresh)).status_code == 200
    signup.clock.at += 0.1
    assert graph_error(await signup.exchange(old))[:3] == (400, 100, 36007)


async def test_signing_up_again_issues_another_token_and_keeps_the_first(signup: SignupSim) -> None:
    first, second = await signup.token(), await signup.token()
    assert first != second
    for token in (first, second):
        assert (await signup.graph("GET", "W1/phone_numbers", token)).status_code == 200
    assert [t["token"] for t in (await signup.client.get("/_sim/signup/tokens")).json()["tokens"]] == [first, second]


# --- debug_token ---------------------------------------------------------------------------------

async def debug(signup: SignupSim, token: str, app_token: str = APP_TOKEN) -> dict[str, object]:
    answer = await signup.client.get("/v23.0/debug_token", params={"input_token": token, "access_token": app_token})
    assert answer.status_code == 200, answer.text
    data: dict[str, object] = answer.json()["data"]
    return data


async def test_debug_token_with_a_shared_waba(signup: SignupSim) -> None:
    token = await signup.token()
    assert await debug(signup, token) == {
        "app_id": APP_ID, "type": "SYSTEM_USER", "application": "Aerostic", "is_valid": True, "expires_at": 0,
        "data_access_expires_at": 0,
        "scopes": ["whatsapp_business_management", "whatsapp_business_messaging", "business_management"],
        "granular_scopes": [{"scope": "whatsapp_business_management", "target_ids": ["W1"]},
                            {"scope": "whatsapp_business_messaging", "target_ids": ["W1"]},
                            {"scope": "business_management", "target_ids": ["B1"]}],
        "user_id": signup.sim.signup.users[EMAIL].id}


async def test_debug_token_without_a_shared_waba(signup: SignupSim) -> None:
    token = await signup.token(waba_id="", business_id="B2")
    data = await debug(signup, token)
    assert data["is_valid"] is True
    assert data["granular_scopes"] == [{"scope": "whatsapp_business_management", "target_ids": []},
                                       {"scope": "whatsapp_business_messaging", "target_ids": []},
                                       {"scope": "business_management", "target_ids": ["B2"]}]


async def test_debug_token_of_unknown_and_revoked_tokens(signup: SignupSim) -> None:
    assert await debug(signup, "EAAGnope") == {
        "error": {"code": 190, "message": "Invalid OAuth access token."}, "is_valid": False, "scopes": []}
    token = await signup.token()
    await signup.client.post("/_sim/tokens/revoke", json={"token": token})
    data = await debug(signup, token)
    assert data["is_valid"] is False
    assert data["error"] == {"code": 190, "subcode": 460, "message": (
        "Error validating access token: The session has been invalidated because the user changed their password "
        "or Facebook has changed the session for security reasons.")}


async def test_debug_token_needs_the_app_access_token(signup: SignupSim) -> None:
    token = await signup.token()
    for app_token in (f"{APP_ID}|wrong", token, ""):
        answer = await signup.client.get("/v23.0/debug_token",
                                         params={"input_token": token, "access_token": app_token})
        assert graph_error(answer) == (400, 190, None, "Invalid OAuth access token.")
    header = await signup.client.get("/v23.0/debug_token", params={"input_token": token},
                                     headers={"Authorization": f"Bearer {APP_TOKEN}"})
    assert header.json()["data"]["is_valid"] is True


# --- admin ---------------------------------------------------------------------------------------

async def test_seeded_account_is_returned_without_password(signup: SignupSim) -> None:
    answer = await signup.client.post("/_sim/signup/accounts", json={
        "email": "new@shop.test", "password": "secret", "businesses": [
            {"id": "B5", "name": "New", "wabas": [{"id": "W5", "name": "New WABA", "numbers": [
                {"id": "P5", "display_phone_number": "+1 555-0199"}]}]}]})
    assert answer.status_code == 201
    body = answer.json()
    assert "password" not in body and body["email"] == "new@shop.test" and body["name"] == "Test User"
    assert re.fullmatch(r"\d{15}", body["id"])
    [waba] = body["businesses"][0]["wabas"]
    assert waba["timezone_id"] == "1" and re.fullmatch(r"[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}",
                                                      waba["message_template_namespace"])
    assert waba["numbers"] == [{
        "id": "P5", "display_phone_number": "+1 555-0199", "verified_name": "Test Business",
        "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K", "throughput_level": "STANDARD",
        "status": "PENDING", "code_verification_status": "VERIFIED", "platform_type": "CLOUD_API"}]


async def test_reseeding_replaces_the_users_data(signup: SignupSim) -> None:
    assert "P2" in signup.sim.numbers
    again = account(password="new", businesses=[{"id": "B1", "name": "Renamed", "wabas": [{"id": "W1"}]}])
    answer = await signup.client.post("/_sim/signup/accounts", json=again)
    assert answer.status_code == 201 and answer.json()["id"] == signup.sim.signup.users[EMAIL].id
    assert "P2" not in signup.sim.numbers and "W2" not in signup.sim.signup.wabas
    assert signup.sim.signup.login(EMAIL, "pw") is None and signup.sim.signup.login(EMAIL, "new") is not None
    accounts = (await signup.client.get("/_sim/signup/accounts")).json()["accounts"]
    assert [(a["email"], a["businesses"][0]["name"]) for a in accounts] == [(EMAIL, "Renamed")]


@pytest.mark.parametrize("businesses", [
    [{"id": "B1", "name": "taken"}],
    [{"id": "B8", "wabas": [{"id": "W1"}]}],
    [{"id": "B8", "wabas": [{"id": "W8", "numbers": [{"id": "P3", "display_phone_number": "1"}]}]}],
])
async def test_ids_of_another_user_conflict(signup: SignupSim, businesses: list[dict[str, object]]) -> None:
    answer = await signup.client.post("/_sim/signup/accounts",
                                      json={"email": "x@y.test", "password": "p", "businesses": businesses})
    assert answer.status_code == 409 and "already seeded for another user" in answer.text


async def test_duplicate_ids_and_bad_values_are_422(signup: SignupSim) -> None:
    dup = {"email": "x@y.test", "password": "p", "businesses": [{"id": "B7", "wabas": [{"id": "B7"}]}]}
    assert (await signup.client.post("/_sim/signup/accounts", json=dup)).status_code == 422
    bad = {"email": "x@y.test", "password": "p", "businesses": [{"id": "B7", "wabas": [{"id": "W7", "numbers": [
        {"id": "P7", "display_phone_number": "1", "messaging_limit_tier": "TIER_3K"}]}]}]}
    assert (await signup.client.post("/_sim/signup/accounts", json=bad)).status_code == 422
    assert (await signup.client.post("/_sim/signup/faults", json={"step": "nope", "code": 1})).status_code == 422


async def test_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASIM_CONFIG_IDS", "300, 301")
    monkeypatch.setenv("METASIM_APP_ID", "42")
    monkeypatch.setenv("METASIM_OAUTH_CODE_TTL_S", "5")
    config = SimConfig()
    assert (config.config_ids, config.app_id, config.oauth_code_ttl_s) == (["300", "301"], "42", 5.0)
    monkeypatch.setenv("METASIM_CONFIG_IDS", '["400"]')
    assert SimConfig().config_ids == ["400"]
    monkeypatch.delenv("METASIM_CONFIG_IDS")
    assert SimConfig().config_ids == ["200000000000001"]


async def test_routes_keep_their_places(signup: SignupSim) -> None:
    faults = await signup.client.post("/_sim/faults/register", json={"latency_ms": 0})
    assert faults.status_code == 200 and faults.json()["latency_ms"] == 0
    unknown = await signup.client.get("/latest/me/businesses")  # not a route: Graph's own error, not FastAPI's
    assert unknown.status_code == 400 and unknown.json()["error"]["type"] == "GraphMethodException"
    assert (await signup.client.get("/_sim/signup/tokens")).json() == {"tokens": []}
    assert (await signup.client.get("/_sim/health")).json()["status"] == "ok"
