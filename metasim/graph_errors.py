"""Graph API error bodies as the simulator emits them, with Meta's titles, details and HTTP statuses.

Shape of a synchronous error (Cloud API error reference)::

    {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
               "error_data": {"messaging_product": "whatsapp", "details": "..."},
               "error_subcode": 2494055, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}}

Platform-level codes (auth, app and WABA rate limits, generic Graph failures) carry no ``error_data``,
like Meta's real bodies; 190 reads ``"Error validating access token: <details>"`` without the ``(#190)``
prefix. ``error_subcode`` and ``is_transient`` appear only where Meta's examples show them.

HTTP statuses follow Meta's error-code table. Where sources disagree the table wins: 130429, 131056, 4 and
80007 are 400 (some reports and Meta's OpenAPI show 429), 131016 is 500 (not 503; 503 is code 2's).
https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

ERROR_CODES_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


@dataclass(frozen=True)
class ErrorSpec:
    """One error code: Meta's title (the ``message`` after ``(#code)``), default details and HTTP status."""

    code: int
    title: str
    details: str
    http_status: int
    subcode: int | None = None


_SPECS = (
    ErrorSpec(0, "AuthException", "We were unable to authenticate the app user.", 401),
    ErrorSpec(1, "An unexpected error occurred", "Invalid request or possible server error.", 400),
    ErrorSpec(2, "Service temporarily unavailable", "Temporary due to downtime or due to being overloaded.", 503),
    ErrorSpec(4, "Application request limit reached", "The app has reached its API call rate limit.", 400, 2446079),
    ErrorSpec(100, "Invalid parameter", "The request included one or more unsupported or misspelled parameters.", 400),
    ErrorSpec(190, "Error validating access token", "Session has expired", 401, 463),
    ErrorSpec(200, "Permissions error", "The access token does not grant the permission this call needs.", 403),
    ErrorSpec(368, "Temporarily blocked for policies violations",
              "The WhatsApp Business Account associated with the app has been restricted or disabled for "
              "violating a platform policy.", 403),
    ErrorSpec(80007, "Business request limit reached for WhatsApp Business Account",
              "The WhatsApp Business Account has reached its rate limit.", 400, 2446079),
    ErrorSpec(130429, "Rate limit hit",
              "Message failed to send because there were too many messages sent from this phone number in a short "
              "period of time", 400, 2494055),
    ErrorSpec(130472, "User's number is part of an experiment",
              "Failed to send message because this user's phone number is part of an experiment", 400),
    ErrorSpec(131000, "Something went wrong", "Message failed to send due to an unknown error.", 500),
    ErrorSpec(131008, "Required parameter is missing", "The request is missing a required parameter.", 400),
    ErrorSpec(131009, "Parameter value is not valid", "One or more parameter values are invalid.", 400),
    ErrorSpec(131016, "Service unavailable", "A service is temporarily unavailable. Please try again later.", 500),
    ErrorSpec(131026, "Message undeliverable",
              "Unable to deliver message. The recipient may not be a WhatsApp user, may not have accepted the "
              "latest terms of service, or may be using an old WhatsApp version.", 400),
    ErrorSpec(131031, "Account has been locked",
              "The WhatsApp Business Account is restricted or disabled for a policy violation.", 403),
    ErrorSpec(131047, "Re-engagement message",
              "Message failed to send because more than 24 hours have passed since the customer last replied to "
              "this number.", 400),
    ErrorSpec(131048, "Spam rate limit hit",
              "Message failed to send because there are restrictions on how many messages can be sent from this "
              "phone number. This may be because too many previous messages were blocked or flagged as spam.", 400),
    ErrorSpec(131049, "Meta chose not to deliver.",
              "This message was not delivered to maintain healthy ecosystem engagement.", 400),
    ErrorSpec(131051, "Unsupported message type", "Unsupported message type.", 400),
    ErrorSpec(131053, "Media upload error", "Unable to upload the media used in the message.", 400),
    ErrorSpec(131056, "(Business Account, Consumer Account) pair rate limit hit",
              "Message failed to send because there were too many messages sent from this phone number to the same "
              "phone number in a short period of time.", 400),
    ErrorSpec(131057, "Account in maintenance mode",
              "Business account is in maintenance mode. It may be undergoing a throughput upgrade.", 500),
    ErrorSpec(132000, "Number of parameters does not match the expected number of params",
              "The number of variable parameter values included in the request did not match the number of "
              "variable parameters defined in the template.", 400),
    ErrorSpec(132001, "Template name does not exist in the translation",
              "The template does not exist in the specified language or the template has not been approved.", 404),
    ErrorSpec(132012, "Parameter format does not match format in the created template",
              "The variable parameter values in the request do not match the formats defined in the template.", 400),
    ErrorSpec(132015, "Template is paused",
              "Template is paused due to low quality so it cannot be sent in a template message.", 400),
    ErrorSpec(132016, "Template is disabled",
              "Template has been paused too many times due to low quality and is now permanently disabled.", 400),
    ErrorSpec(133010, "Account not registered",
              "Phone number not registered on the WhatsApp Business Platform.", 400),
)

CATALOGUE: dict[int, ErrorSpec] = {spec.code: spec for spec in _SPECS}

# Graph platform errors: Meta sends them without WhatsApp's ``error_data`` block.
PLATFORM_CODES = frozenset({0, 1, 2, 4, 190, 200, 80007})
# Meta flags these as transient in its examples (``"is_transient": true``).
TRANSIENT_CODES = frozenset({2, 4, 80007})


def new_fbtrace_id() -> str:
    """A fresh trace id shaped like Meta's (23 URL-safe characters)."""
    return "A" + secrets.token_urlsafe(16)


def error_body(code: int, *, details: str | None = None, message: str | None = None) -> tuple[int, dict[str, Any]]:
    """``(http status, JSON body)`` of a synchronous Graph error; raises ``KeyError`` for codes not catalogued."""
    spec = CATALOGUE[code]
    text = spec.details if details is None else details
    error: dict[str, Any] = {"message": message or _message(spec, text), "type": "OAuthException", "code": code}
    if code not in PLATFORM_CODES:
        error["error_data"] = {"messaging_product": "whatsapp", "details": text}
    if spec.subcode is not None:
        error["error_subcode"] = spec.subcode
    if code in TRANSIENT_CODES:
        error["is_transient"] = True
    error["fbtrace_id"] = new_fbtrace_id()
    return spec.http_status, {"error": error}


def graph_error(code: int, message: str, *, http_status: int = 400, subcode: int | None = None,
                kind: str = "OAuthException") -> tuple[int, dict[str, Any]]:
    """A Graph platform error with Meta's exact ``message`` (OAuth and object errors carry no ``error_data``)."""
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = new_fbtrace_id()
    return http_status, {"error": error}


def status_error(code: int, *, details: str | None = None) -> dict[str, Any]:
    """The ``errors[0]`` object of a ``failed`` status webhook (no ``type``, no ``fbtrace_id``)."""
    spec = CATALOGUE[code]
    return {
        "code": code,
        "title": spec.title,
        "message": spec.title,
        "error_data": {"details": spec.details if details is None else details},
        "href": ERROR_CODES_HREF,
    }


def _message(spec: ErrorSpec, details: str) -> str:
    if spec.code == 190:
        return f"{spec.title}: {details}"
    return f"(#{spec.code}) {spec.title}"
