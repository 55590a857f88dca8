"""metasim.onboarding: discovery, webhook subscription, registration, faults, and sending with the new token."""

from __future__ import annotations

import pytest

from metasim.state import Number
from tests.unit.metasim.conftest import APP_ID, SignupSim, graph_error

PERMISSIONS = (403, 200, None, "(#200) Permissions error")


def unsupported(method: str, object_id: str) -> tuple[int, int, int, str]:
    return (400, 100, 33, f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
                          "loaded due to missing permissions, or does not support this operation. Please read the "
                          "Graph API documentation at https://developers.facebook.com/docs/graph-api")


# --- discovery -----------------------------------------------------------------------------------

async def test_discovery_shows_what_the_token_grants(signup: SignupSim) -> None:
    token = await signup.token()
    businesses = await signup.graph("GET", "me/businesses", token)
    assert businesses.json() == {"data": [{"id": "B1", "name": "Shop Ltd"}],
                                 "paging": {"cursors": {"before": "QjE", "after": "QjE"}}}
    wabas = await signup.graph("GET", "B1/owned_whatsapp_business_accounts", token)
    assert wabas.json()["data"] == [{"id": "W1", "name": "Shop WABA", "timezone_id": "1",
                                     "message_template_namespace": "abc_123"}]
    numbers = await signup.graph("GET", "W1/phone_numbers", token)
    assert numbers.json() == {"data": [
        {"id": "P1", "display_phone_number": "+1 555-0100", "verified_name": "Shop", "quality_rating": "GREEN",
         "code_verification_status": "VERIFIED", "status": "PENDING", "platform_type": "CLOUD_API",
         "throughput": {"level": "STANDARD"}, "messaging_limit_tier": "TIER_1K", "account_mode": "LIVE",
         "name_status": "APPROVED"},
        {"id": "P2", "display_phone_number": "+1 555-0101", "verified_name": "Shop Two", "quality_rating": "GREEN",
         "code_verification_status": "VERIFIED", "status": "CONNECTED", "platform_type": "CLOUD_API",
         "throughput": {"level": "HIGH"}, "messaging_limit_tier": "TIER_1K", "account_mode": "LIVE",
         "name_status": "APPROVED"}],
        "paging": {"cursors": {"before": "UDE", "after": "UDI"}}}


async def test_phone_number_fields_select_and_refuse_unknown_ones(signup: SignupSim) -> None:
    token = await signup.token()
    some = await signup.graph("GET", "W1/phone_numbers", token, params={"fields": "status,throughput{level}"})
    assert some.json()["data"] == [{"id": "P1", "status": "PENDING", "throughput": {"level": "STANDARD"}},
                                   {"id": "P2", "status": "CONNECTED", "throughput": {"level": "HIGH"}}]
    bad = await signup.graph("GET", "W1/phone_numbers", token, params={"fields": "id,color"})
    assert graph_error(bad)[:2] == (400, 100)
    assert bad.json()["error"]["message"] == ("(#100) Tried accessing nonexisting field (color) on node type "
                                              "(WhatsAppBusinessPhoneNumber)")


async def test_assets_not_granted_are_refused(signup: SignupSim) -> None:
    token = await signup.token()
    assert graph_error(await signup.graph("GET", "B2/owned_whatsapp_business_accounts", token)) == PERMISSIONS
    assert graph_error(await signup.graph("GET", "W2/phone_numbers", token)) == PERMISSIONS
    assert graph_error(await signup.graph("POST", "W2/subscribed_apps", token)) == PERMISSIONS
    assert graph_error(await signup.graph("POST", "P3/register", token, json={
        "messaging_product": "whatsapp", "pin": "123456"})) == PERMISSIONS
    unknown = await signup.graph("GET", "B404/owned_whatsapp_business_accounts", token)
    assert graph_error(unknown) == unsupported("get", "B404")
    assert unknown.json()["error"]["type"] == "GraphMethodException"
    assert graph_error(await signup.graph("GET", "W404/phone_numbers", token)) == unsupported("get", "W404")
    assert graph_error(await signup.graph("POST", "P404/register", token, json={})) == unsupported("post", "P404")


async def test_a_token_without_a_waba_sees_its_business_only(signup: SignupSim) -> None:
    token = await signup.token(waba_id="")
    assert (await signup.graph("GET", "me/businesses", token)).json()["data"] == [{"id": "B1", "name": "Shop Ltd"}]
    assert (await signup.graph("GET", "B1/owned_whatsapp_business_accounts", token)).json() == {"data": []}
    assert graph_error(await signup.graph("GET", "W1/phone_numbers", token)) == PERMISSIONS


@pytest.mark.parametrize("path", ["me/businesses", "B1/owned_whatsapp_business_accounts", "W1/phone_numbers"])
async def test_token_checks_are_190(signup: SignupSim, path: str) -> None:
    token = await signup.token()
    missing = await signup.graph("GET", path, None)
    assert graph_error(missing)[:2] == (401, 190)
    unknown = await signup.graph("GET", path, "EAAGnope")
    assert graph_error(unknown) == (401, 190, None, "Invalid OAuth access token - Cannot parse access token")
    await signup.client.post("/_sim/tokens/revoke", json={"token": token})
    assert graph_error(await signup.graph("GET", path, token))[:3] == (401, 190, 460)


async def test_access_token_query_parameter_works(signup: SignupSim) -> None:
    token = await signup.token()
    answer = await signup.client.get("/v23.0/me/businesses", params={"access_token": token})
    assert answer.json()["data"] == [{"id": "B1", "name": "Shop Ltd"}]


async def test_admin_tokens_see_the_businesses_of_their_wabas(signup: SignupSim) -> None:
    await signup.client.post("/_sim/tokens", json={"token": "admin-tok", "waba_id": "W2"})
    assert (await signup.graph("GET", "me/businesses", "admin-tok")).json()["data"] == [
        {"id": "B2", "name": "Other Ltd"}]


# --- subscription --------------------------------------------------------------------------------

async def test_subscribe_list_and_unsubscribe(signup: SignupSim) -> None:
    token = await signup.token()
    assert (await signup.graph("GET", "W1/subscribed_apps", token)).json() == {"data": []}
    assert (await signup.graph("POST", "W1/subscribed_apps", token)).json() == {"success": True}
    listed = await signup.graph("GET", "W1/subscribed_apps", token)
    assert listed.json() == {"data": [{"whatsapp_business_api_data": {
        "id": APP_ID, "name": "Aerostic", "link": f"https://www.facebook.com/games/?app_id={APP_ID}"}}]}
    assert (await signup.client.get("/_sim/signup/subscriptions")).json() == {"W1": [APP_ID]}
    override = await signup.graph("POST", "W1/subscribed_apps", token, json={
        "override_callback_uri": "https://hooks.test/w", "verify_token": "v"})
    assert override.json() == {"success": True}
    assert (await signup.graph("GET", "W1/subscribed_apps", token)).json()["data"][0]["override_callback_uri"] == (
        "https://hooks.test/w")
    assert (await signup.graph("DELETE", "W1/subscribed_apps", token)).json() == {"success": True}
    assert (await signup.client.get("/_sim/signup/subscriptions")).json() == {}


# --- registration and sending --------------------------------------------------------------------

async def test_register_makes_a_pending_number_a_sending_number(signup: SignupSim) -> None:
    token = await signup.token()
    before = await signup.send("P1", token)
    assert graph_error(before) == (400, 133010, None, "(#133010) Account not registered")
    assert "P1" not in signup.sim.numbers
    registered = await signup.graph("POST", "P1/register", token, json={"messaging_product": "whatsapp",
                                                                          "pin": "123456"})
    assert registered.status_code == 200 and registered.json() == {"success": True}
    assert (await signup.client.get("/_sim/signup/registrations")).json() == {"P1": {"pin": "123456", "count": 1}}
    assert signup.sim.numbers["P1"] == Number("P1", "W1", "B1", "15550100", 80)
    assert signup.sim.tier_of("B1") == 1000
    numbers = (await signup.graph("GET", "W1/phone_numbers", token, params={"fields": "status"})).json()["data"]
    assert numbers == [{"id": "P1", "status": "CONNECTED"}, {"id": "P2", "status": "CONNECTED"}]
    sent = await signup.send("P1", token)
    assert sent.status_code == 200 and sent.json()["messages"][0]["message_status"] == "accepted"
    await signup.graph("POST", "P1/register", token, json={"messaging_product": "whatsapp", "pin": "654321"})
    assert (await signup.client.get("/_sim/signup/registrations")).json() == {"P1": {"pin": "654321", "count": 2}}


async def test_connected_numbers_send_from_the_start(signup: SignupSim) -> None:
    assert signup.sim.numbers["P2"] == Number("P2", "W1", "B1", "15550101", 1000)
    token = await signup.token()
    assert (await signup.send("P2", token)).status_code == 200
    assert graph_error(await signup.send("P3", token))[:2] == (401, 190)


@pytest.mark.parametrize(("body", "details"), [
    ({"messaging_product": "whatsapp", "pin": "12345"}, "6-digit"),
    ({"messaging_product": "whatsapp", "pin": 123456}, "6-digit"),
    ({"messaging_product": "whatsapp", "pin": "12345a"}, "6-digit"),
    ({"pin": "123456"}, "messaging_product"),
])
async def test_register_refuses_a_bad_body(signup: SignupSim, body: dict[str, object], details: str) -> None:
    token = await signup.token()
    answer = await signup.graph("POST", "P1/register", token, json=body)
    assert graph_error(answer) == (400, 100, None, "(#100) Invalid parameter")
    assert details in answer.json()["error"]["error_data"]["details"]
    assert (await signup.client.get("/_sim/signup/registrations")).json() == {}


async def test_revoked_token_cannot_send(signup: SignupSim) -> None:
    token = await signup.token()
    assert (await signup.send("P2", token)).status_code == 200
    assert (await signup.client.post("/_sim/tokens/revoke", json={"token": token})).json() == {"revoked": True}
    assert graph_error(await signup.send("P2", token))[:3] == (401, 190, 460)
    assert (await signup.client.get("/_sim/signup/tokens")).json()["tokens"][0]["revoked"] is True
    other = await signup.token()
    assert (await signup.send("P2", other)).status_code == 200


async def test_one_admin_token_may_grant_several_wabas(signup: SignupSim) -> None:
    for waba in ("W1", "W2"):
        await signup.client.post("/_sim/tokens", json={"token": "multi", "waba_id": waba})
    assert signup.sim.tokens["multi"] == {"W1", "W2"}
    assert (await signup.send("P2", "multi")).status_code == 200
    assert graph_error(await signup.send("P3", "multi"))[:2] == (400, 133010)
    await signup.client.post("/_sim/tokens", json={"token": "solo", "waba_id": "W2", "replace": True})
    assert "multi" in signup.sim.revoked


# --- faults and logs -----------------------------------------------------------------------------

async def test_faults_answer_first_for_their_step_then_stop(signup: SignupSim) -> None:
    token = await signup.token()
    fault = {"step": "phone_numbers", "code": 131000, "times": 2}
    assert (await signup.client.post("/_sim/signup/faults", json=fault)).status_code == 200
    for _ in range(2):
        failed = await signup.graph("GET", "W1/phone_numbers", None)  # before the token check
        assert graph_error(failed) == (500, 131000, None, "(#131000) Something went wrong")
    assert (await signup.graph("GET", "W1/phone_numbers", token)).status_code == 200


async def test_fault_with_its_own_message_status_and_subcode(signup: SignupSim) -> None:
    code = await signup.code()
    await signup.client.post("/_sim/signup/faults", json={
        "step": "access_token", "code": 2, "message": "Service temporarily unavailable", "http_status": 503,
        "error_subcode": 99, "times": 1})
    assert graph_error(await signup.exchange(code)) == (503, 2, 99, "Service temporarily unavailable")
    assert (await signup.exchange(code)).status_code == 200  # the fault left the code unused


@pytest.mark.parametrize(("step", "method", "path"), [
    ("debug_token", "GET", "debug_token"), ("businesses", "GET", "me/businesses"),
    ("owned_wabas", "GET", "B1/owned_whatsapp_business_accounts"), ("subscribed_apps", "DELETE", "W1/subscribed_apps"),
    ("register", "POST", "P1/register")])
async def test_each_step_can_fail(signup: SignupSim, step: str, method: str, path: str) -> None:
    await signup.client.post("/_sim/signup/faults", json={"step": step, "code": 133005, "http_status": 400,
                                                           "message": "Two step verification PIN Mismatch"})
    answer = await signup.graph(method, path, "any")
    assert graph_error(answer) == (400, 133005, None, "Two step verification PIN Mismatch")


async def test_faults_can_be_cleared(signup: SignupSim) -> None:
    await signup.client.post("/_sim/signup/faults", json={"step": "businesses", "code": 131000, "times": 5})
    assert (await signup.client.delete("/_sim/signup/faults")).json() == {"cleared": 1}
    assert (await signup.graph("GET", "me/businesses", await signup.token())).status_code == 200


async def test_onboarding_calls_have_their_own_log(signup: SignupSim) -> None:
    token = await signup.token()
    await signup.graph("POST", "P1/register", token, json={"messaging_product": "whatsapp", "pin": "123456"})
    await signup.send("P1", token)
    sends = (await signup.client.get("/_sim/requests", params={"phone_number_id": "P1"})).json()["data"]
    assert [(e["path"], e["status"]) for e in sends] == [("/v23.0/P1/messages", 200)]
    log = (await signup.client.get("/_sim/signup/requests")).json()["data"]
    assert [e["step"] for e in log] == ["dialog", "login", "confirm", "access_token", "register"]
    [register] = (await signup.client.get("/_sim/signup/requests", params={"step": "register"})).json()["data"]
    assert register["body"] == {"messaging_product": "whatsapp", "pin": "123456"}
    assert (register["status"], register["response"], register["fault"]) == (200, {"success": True}, False)
    await signup.client.post("/_sim/reset")
    assert (await signup.client.get("/_sim/signup/requests")).json() == {"data": []}
