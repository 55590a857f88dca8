"""What Meta's phone-number objects become, and the console's overall connection state."""

from __future__ import annotations

from api.connection import Account, Attempt, overall_state
from dispatcher.onboarding import _number


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


def _attempt(status: str) -> Attempt:
    return Attempt(attempt_id="a", status=status, step=None, error_code=None, error_message=None,  # type: ignore[arg-type]
                   requested_at=None, finished_at=None)


def _account(status: str) -> Account:
    return Account(waba_id="W", name=None, business_id=None, status=status, status_reason=None)


def test_overall_state() -> None:
    assert overall_state(None, []) == "not_connected"
    assert overall_state(_attempt("pending"), [_account("connected")]) == "pending"
    assert overall_state(_attempt("failed"), []) == "failed"
    assert overall_state(_attempt("failed"), [_account("connected")]) == "connected"
    assert overall_state(None, [_account("connected"), _account("needs_reauth")]) == "needs_reauth"
    assert overall_state(_attempt("connected"), [_account("disconnected")]) == "disconnected"
