"""dispatcher.onboarding: what Meta's phone-number objects become, and what a failed attempt undoes."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from dispatcher.graph import GraphClient
from dispatcher.onboarding import Discovery, Onboarding, _number
from schemas.signup import SignupRequest


def test_standard_number() -> None:
    number = _number("W1", {"id": "P1", "display_phone_number": "+1 555-0100", "verified_name": "Shop",
                            "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K",
                            "throughput": {"level": "STANDARD"}, "status": "CONNECTED"})
    assert (number.phone_number_id, number.waba_id, number.throughput_mps, number.throughput_level) == (
        "P1", "W1", 80, "STANDARD")
    assert (number.quality_rating, number.messaging_limit_tier, number.verified_name) == ("GREEN", "TIER_1K", "Shop")


def test_high_and_coexistence_numbers() -> None:
    assert _number("W", {"id": "P", "throughput": {"level": "HIGH"}}).throughput_mps == 1000
    assert _number("W", {"id": "P", "platform_type": "COEXISTENCE",
                         "throughput": {"level": "NOT_APPLICABLE"}}).throughput_mps == 20
    assert _number("W", {"id": "P"}).throughput_mps == 80


# --- clean-up of a failed attempt ------------------------------------------------------------------

class FakeMeta:
    """Graph's signup endpoints for one token granted ``wabas`` (one pending number each), over a mock transport.

    ``subscribed`` is Meta's record of which WABAs our app is subscribed to; ``fail_register`` makes every
    registration fail (Meta's 133005) so the attempt ends in its clean-up.
    """

    def __init__(self, wabas: list[str], subscribed: set[str], *, fail_register: bool = True) -> None:
        self.wabas, self.subscribed, self.fail_register = wabas, set(subscribed), fail_register
        self.calls: list[tuple[str, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v23.0/")
        self.calls.append((request.method, path))
        if path == "oauth/access_token":
            return httpx.Response(200, json={"access_token": "EAAtoken", "token_type": "bearer"})
        if path == "debug_token":
            return httpx.Response(200, json={"data": {"is_valid": True, "granular_scopes": [
                {"scope": "whatsapp_business_management", "target_ids": self.wabas}]}})
        if path == "me/businesses":
            return httpx.Response(200, json={"data": [{"id": "B1"}]})
        if path == "B1/owned_whatsapp_business_accounts":
            return httpx.Response(200, json={"data": [{"id": w, "name": w} for w in self.wabas]})
        waba, _, leaf = path.partition("/")
        if leaf == "phone_numbers":
            return httpx.Response(200, json={"data": [{"id": f"P{waba}", "status": "PENDING"}]})
        if leaf == "subscribed_apps":
            if request.method == "GET":
                apps = [{"whatsapp_business_api_data": {"id": APP_ID, "name": "Aerostic"}}] * (waba in self.subscribed)
                return httpx.Response(200, json={"data": apps})
            (self.subscribed.add if request.method == "POST" else self.subscribed.discard)(waba)
            return httpx.Response(200, json={"success": True})
        if leaf == "register" and self.fail_register:
            return httpx.Response(400, json={"error": {"message": "Two step verification PIN Mismatch",
                                                       "type": "OAuthException", "code": 133005}})
        return httpx.Response(200, json={"success": True})


APP_ID = "1234567890"


class Offline(Onboarding):
    """``Onboarding`` with PostgreSQL replaced by what the test says it holds."""

    def __init__(self, meta: FakeMeta, *, tenant_has: set[str] = frozenset(),  # type: ignore[assignment]
                 stored_meanwhile: set[str] = frozenset(), db_down: bool = False) -> None:  # type: ignore[assignment]
        graph = GraphClient("https://graph.test", "v23.0", transport=httpx.MockTransport(meta.handle))
        super().__init__(graph, engine=None, vault=None, app_id=APP_ID, app_secret="s", retry_base_s=0)  # type: ignore[arg-type]
        self.tenant_has, self.stored_meanwhile, self.db_down = tenant_has, stored_meanwhile, db_down

    async def _known_wabas(self, tenant_id: str) -> set[str]:
        return set(self.tenant_has)

    async def _refuse_others(self, tenant_id: str, found: Discovery) -> None:
        return None

    async def _stored_wabas(self, wabas: list[str]) -> set[str]:
        if self.db_down:
            raise OSError("connection refused")
        return {w for w in wabas if w in self.stored_meanwhile}


REQUEST = SignupRequest(event_id="a1", tenant_id="t1", attempt_id="a1", code="CODE",
                        redirect_uri="https://aerostic.test/meta/callback", requested_at=datetime.now(UTC))


async def test_a_failed_attempt_undoes_only_the_subscriptions_it_added() -> None:
    # W-new: subscribed by this attempt. W-before: our app was already subscribed (another tenant's
    # connection, or Meta's record from elsewhere). W-mine: the tenant already has it (a reconnection).
    meta = FakeMeta(["W-new", "W-before", "W-mine"], subscribed={"W-before", "W-mine"})
    result = await Offline(meta, tenant_has={"W-mine"}).connect(REQUEST)
    assert (result.outcome, result.step, result.error_code) == ("failed", "register", 133005)
    assert [path for method, path in meta.calls if method == "DELETE"] == ["W-new/subscribed_apps"]
    assert meta.subscribed == {"W-before", "W-mine"}
    assert ("GET", "W-mine/subscribed_apps") not in meta.calls  # the tenant's own: never undone, not asked


async def test_a_waba_stored_by_some_tenant_meanwhile_keeps_its_subscription() -> None:
    meta = FakeMeta(["W1", "W2"], subscribed=set())
    result = await Offline(meta, stored_meanwhile={"W1"}).connect(REQUEST)
    assert result.outcome == "failed"
    assert meta.subscribed == {"W1"}  # W2 undone; W1 now belongs to someone


async def test_nothing_is_undone_when_the_owners_cannot_be_checked() -> None:
    meta = FakeMeta(["W1"], subscribed=set())
    assert (await Offline(meta, db_down=True).connect(REQUEST)).outcome == "failed"
    assert meta.subscribed == {"W1"} and all(method != "DELETE" for method, _ in meta.calls)
