"""metasim.dialog: the OAuth dialog's pages, its refusals and Meta's redirects back."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from tests.unit.metasim.conftest import EMAIL, REDIRECT, STATE, SignupSim, hidden_dialog, redirect_params


def options(html: str, select: str) -> list[tuple[str, str, bool]]:
    """(value, label, selected) of each option of the select named ``select``."""
    block = re.search(rf'<select name="{select}" id="{select}">(.*?)</select>', html, re.S)
    assert block, html
    return [(value, label.strip(), bool(selected))
            for value, selected, label in re.findall(r'<option\s+value="([^"]*)"( selected)?>([^<]*)</option>',
                                                     block.group(1))]


async def test_login_page_carries_the_contract_fields(signup: SignupSim) -> None:
    page = await signup.open()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<title>Log in to Facebook</title>" in html
    assert '<form id="login-form" method="post" action="/v23.0/dialog/oauth/login">' in html
    assert 'name="email" id="email"' in html and 'name="password" id="password"' in html
    assert '<button type="submit" id="login">' in html
    assert len(hidden_dialog(html)) >= 32


@pytest.mark.parametrize(("params", "problem"), [
    ({"client_id": "999"}, "Invalid App ID"),
    ({"client_id": None}, "Invalid App ID"),
    ({"config_id": "123"}, "Invalid configuration"),
    ({"response_type": "token"}, "Invalid response_type"),
    ({"redirect_uri": "/meta/callback"}, "URL blocked: redirect_uri &#39;/meta/callback&#39;"),
    ({"redirect_uri": "javascript:alert(1)"}, "URL blocked"),
    ({"state": None}, "Missing state"),
    ({"extras": "{not json"}, "Invalid extras"),
])
async def test_bad_parameters_get_an_error_page_and_no_redirect(signup: SignupSim, params: dict[str, str | None],
                                                                problem: str) -> None:
    page = await signup.open(**params)  # type: ignore[arg-type]
    assert page.status_code == 400 and "location" not in page.headers
    assert "<title>Error</title>" in page.text and problem in page.text
    assert "login-form" not in page.text


async def test_second_configuration_is_accepted(signup: SignupSim) -> None:
    assert (await signup.open(config_id="200000000000002")).status_code == 200


async def test_wrong_password_shows_the_login_again(signup: SignupSim) -> None:
    dialog = hidden_dialog((await signup.open()).text)
    for email, password in ((EMAIL, "wrong"), ("nobody@shop.test", "pw")):
        page = await signup.login(dialog, email, password)
        assert page.status_code == 401 and "location" not in page.headers
        assert "The email address or password you entered is incorrect." in page.text
        assert 'id="login-form"' in page.text and hidden_dialog(page.text) == dialog
    page = await signup.login(dialog, " Owner@Shop.test ")
    assert page.status_code == 200 and "<title>Connect your WhatsApp account</title>" in page.text


async def test_consent_page_lists_the_users_assets(signup: SignupSim) -> None:
    dialog, page = await signup.consent()
    html = page.text
    assert '<form id="consent-form" method="post" action="/v23.0/dialog/oauth/confirm">' in html
    assert "whatsapp_business_management" in html and "whatsapp_business_messaging" in html
    assert hidden_dialog(html) == dialog
    assert options(html, "business_id") == [("B1", "Shop Ltd", False), ("B2", "Other Ltd", False)]
    assert options(html, "waba_id") == [("W1", "Shop WABA (Shop Ltd)", True), ("W2", "Other WABA (Other Ltd)", False),
                                        ("", "Don't share a WhatsApp account", False)]
    assert [value for value, _, _ in options(html, "phone_number_id")] == ["P1", "P2", "P3"]
    assert '<button type="submit" name="decision" value="allow" id="allow">Allow</button>' in html
    assert '<button type="submit" name="decision" value="cancel" id="cancel">Cancel</button>' in html


async def test_allow_redirects_with_a_code_and_the_same_state(signup: SignupSim) -> None:
    dialog, _ = await signup.consent(redirect_uri=f"{REDIRECT}?tenant=t1")
    answer = await signup.confirm(dialog, decision="allow", business_id="B1", waba_id="W1", phone_number_id="P1")
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(f"{REDIRECT}?tenant=t1&code=AQ")
    params = redirect_params(answer)
    assert set(params) == {"tenant", "code", "state"} and params["state"] == STATE
    assert len(params["code"]) >= 100 and re.fullmatch(r"[A-Za-z0-9_\-]+", params["code"])
    grant = signup.sim.signup.codes[params["code"]]
    assert (grant.business_id, grant.waba_id, grant.phone_number_id, grant.redirect_uri) == (
        "B1", "W1", "P1", f"{REDIRECT}?tenant=t1")
    assert grant.expires_at == signup.clock() + 600


async def test_cancel_redirects_with_access_denied(signup: SignupSim) -> None:
    dialog, _ = await signup.consent(state="abc")
    answer = await signup.confirm(dialog, decision="cancel", business_id="B1", waba_id="W1")
    assert answer.status_code == 302
    assert answer.headers["location"] == (f"{REDIRECT}?error=access_denied&error_code=200&error_description="
                                          "Permissions+error&error_reason=user_denied&state=abc")
    assert signup.sim.signup.codes == {}


async def test_dont_share_and_form_defaults(signup: SignupSim) -> None:
    dialog, _ = await signup.consent()
    shared_nothing = await signup.confirm(dialog, decision="allow", business_id="B2", waba_id="")
    grant = signup.sim.signup.codes[redirect_params(shared_nothing)["code"]]
    assert (grant.business_id, grant.waba_id) == ("B2", None)
    dialog, _ = await signup.consent()
    defaults = await signup.confirm(dialog, decision="allow")
    grant = signup.sim.signup.codes[redirect_params(defaults)["code"]]
    assert (grant.business_id, grant.waba_id) == ("B1", "W1")


@pytest.mark.parametrize(("business_id", "waba_id"), [("B1", "W2"), ("B9", "W1"), ("B1", "W9")])
async def test_consent_refuses_assets_outside_the_choice(signup: SignupSim, business_id: str, waba_id: str) -> None:
    await signup.client.post("/_sim/signup/accounts", json={"email": "other@x.test", "password": "p", "businesses": [
        {"id": "B9", "name": "Not yours", "wabas": [{"id": "W9"}]}]})
    dialog, _ = await signup.consent()
    page = await signup.confirm(dialog, decision="allow", business_id=business_id, waba_id=waba_id)
    assert page.status_code == 400 and "location" not in page.headers
    assert 'id="consent-form"' in page.text and "is not in business portfolio" in page.text
    assert signup.sim.signup.codes == {}
    assert (await signup.confirm(dialog, decision="allow", business_id="B2", waba_id="W2")).status_code == 302


async def test_dialog_session_is_single_use(signup: SignupSim) -> None:
    dialog, _ = await signup.consent()
    assert (await signup.confirm(dialog, decision="allow")).status_code == 302
    for again in (await signup.confirm(dialog, decision="allow"), await signup.login(dialog)):
        assert again.status_code == 400 and "expired or was already used" in again.text
    unknown = await signup.confirm("nope", decision="allow")
    assert unknown.status_code == 400


async def test_confirm_needs_a_login(signup: SignupSim) -> None:
    dialog = hidden_dialog((await signup.open()).text)
    assert (await signup.confirm(dialog, decision="allow")).status_code == 400


async def test_dialog_session_expires(signup: SignupSim) -> None:
    dialog, _ = await signup.consent()
    signup.clock.at += 600
    page = await signup.confirm(dialog, decision="allow")
    assert page.status_code == 400 and "location" not in page.headers


async def test_dialog_pages_are_logged_without_passwords(signup: SignupSim) -> None:
    await signup.code()
    log = (await signup.client.get("/_sim/signup/requests")).json()["data"]
    assert [(e["step"], e["status"]) for e in log] == [("dialog", 200), ("login", 200), ("confirm", 302)]
    assert log[1]["body"]["password"] == "***" and log[1]["body"]["email"] == EMAIL
    assert log[2]["response"]["location"].startswith(REDIRECT + "?code=")


async def test_state_round_trips_exactly(signup: SignupSim) -> None:
    state = "eyJ0Ijoi.dGVuYW50In0~_-+ /?%&=#"
    query = urlencode({"client_id": "100000000000001", "redirect_uri": REDIRECT, "state": state,
                       "config_id": "200000000000001", "response_type": "code"})
    dialog = hidden_dialog((await signup.client.get(f"/v23.0/dialog/oauth?{query}")).text)
    await signup.login(dialog)
    answer = await signup.confirm(dialog, decision="allow")
    assert redirect_params(answer)["state"] == state
