"""dispatcher.onboarding: what Meta's phone-number objects become."""

from __future__ import annotations

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
