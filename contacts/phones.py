"""Phone numbers in one canonical form, E.164 (``+`` and up to 15 digits), with Google's libphonenumber.

A contact is keyed by its WhatsApp id (``wa_id``): Meta's digits without ``+``. A number typed or imported is
normalised to E.164 first (``normalise``), and its ``wa_id`` is those digits (``wa_id_of``) until Meta returns
another (Meta's ``wa_id`` is adopted: it is what Meta sends webhooks with). ``+91 98765-43210``,
``0091 9876543210``, ``919876543210`` and, with region ``IN``, ``09876543210`` are all ``+919876543210``.
"""

from __future__ import annotations

import re

import phonenumbers

MAX_INPUT = 64  # characters of a raw number; anything longer is not a phone number
_WA_ID = re.compile(r"[1-9][0-9]{6,14}")
_REGION = re.compile(r"[A-Z]{2}")


class InvalidNumber(ValueError):
    """A number that cannot be a WhatsApp number; ``str()`` says why."""


def check_region(region: str | None) -> str | None:
    """``region`` upper-cased if it is a region libphonenumber knows (ISO 3166-1 alpha-2), else ``ValueError``."""
    if region is None or region == "":
        return None
    code = region.strip().upper()
    if not _REGION.fullmatch(code) or code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{region!r} is not a known ISO 3166-1 region code")
    return code


def normalise(raw: str, region: str | None = None) -> str:
    """``raw`` in E.164 (``+919876543210``); ``InvalidNumber`` with the reason when it is no valid number.

    A number with ``+`` or ``00`` is international. Without, it is read in ``region`` (the tenant's or the
    import's default) when one is given and the number is valid there; otherwise as international digits
    (the form of Meta's ``wa_id``).
    """
    text = raw.strip()
    if not text:
        raise InvalidNumber("empty phone number")
    if len(text) > MAX_INPUT:
        raise InvalidNumber("too long to be a phone number")
    if any(c.isalpha() for c in text):
        raise InvalidNumber("letters in a phone number")
    digits = re.sub(r"\D", "", text)
    if not digits:
        raise InvalidNumber("no digits")
    international = text.startswith("+")
    if not international and text.startswith("00"):
        digits, international = digits[2:], True
    candidates: list[tuple[str, str | None]] = [(f"+{digits}", None)]
    if region and not international:
        candidates.insert(0, (digits, region))
    reason = "not a valid phone number"
    for number, where in candidates:
        try:
            parsed = phonenumbers.parse(number, where)
        except phonenumbers.NumberParseException as exc:
            reason = _parse_reason(exc)
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        reason = _validity_reason(parsed)
    raise InvalidNumber(reason)


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code (give it with + or a region)",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, "not a phone number")


def _validity_reason(parsed: phonenumbers.PhoneNumber) -> str:
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    return {
        phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code (give it with + or a region)",
        phonenumbers.ValidationResult.TOO_SHORT: "too short",
        phonenumbers.ValidationResult.TOO_LONG: "too long",
        phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for its country",
    }.get(possible, "not a valid number for its country")


def wa_id_of(e164: str) -> str:
    """The WhatsApp id of an E.164 number (its digits), until Meta returns another."""
    return e164.removeprefix("+")


def e164_of_wa_id(wa_id: str) -> str | None:
    """The E.164 form of a WhatsApp id, or None when ``wa_id`` is not a plain international number."""
    return f"+{wa_id}" if _WA_ID.fullmatch(wa_id) else None
