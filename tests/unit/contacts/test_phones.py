"""Numbers normalised to E.164: international forms, a default region, and the reasons a number is refused."""

from __future__ import annotations

import pytest

from contacts.phones import InvalidNumber, check_region, e164_of_wa_id, normalise, wa_id_of


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("+91 98765-43210", None, "+919876543210"),
    ("0091 9876543210", None, "+919876543210"),
    ("919876543210", None, "+919876543210"),  # Meta's wa_id form: international digits without +
    ("09876543210", "IN", "+919876543210"),  # national, read in the default region
    ("919876543210", "IN", "+919876543210"),  # international digits even with a region
    ("(650) 555-1234", "US", "+16505551234"),
    ("+1 (650) 555-1234", "GB", "+16505551234"),  # a + number ignores the region
    ("07911 123456", "GB", "+447911123456"),
    ("  +5511987654321 ", None, "+5511987654321"),
])
def test_normalise(raw: str, region: str | None, expected: str) -> None:
    assert normalise(raw, region) == expected


@pytest.mark.parametrize(("raw", "region", "reason"), [
    ("", None, "empty"),
    ("abc", None, "letters"),
    ("12345", None, "too short"),
    ("+1 650 555 12345", None, "too long"),
    ("+999123456789", None, "country code"),
    ("6505551234", None, "not a valid number"),  # national without a region
    ("-- --", None, "no digits"),
    ("1" * 70, None, "too long"),
])
def test_invalid_numbers_say_why(raw: str, region: str | None, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason):
        normalise(raw, region)


def test_the_same_number_written_differently_has_one_canonical_form() -> None:
    forms = ["+91 98765 43210", "0091-98765-43210", "919876543210", "(0)98765 43210"]
    assert {normalise(f, "IN") for f in forms} == {"+919876543210"}


def test_wa_id_and_e164() -> None:
    assert wa_id_of("+919876543210") == "919876543210"
    assert e164_of_wa_id("919876543210") == "+919876543210"
    assert e164_of_wa_id("US.13491208655302741918") is None  # a username-based user id is no number
    assert e164_of_wa_id("0123") is None


def test_regions() -> None:
    assert check_region("in") == "IN"
    assert check_region(None) is None
    for bad in ("XX", "IND", "1"):
        with pytest.raises(ValueError, match="region"):
            check_region(bad)
