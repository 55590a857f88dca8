"""Graph errors become classes chosen by Meta's code; every real error vector parses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dispatcher import exceptions as ex
from tests.unit._vectors import VECTORS, WEBHOOK_FILES, load

ERRORS = sorted((VECTORS / "errors").glob("*.json"))
ERROR_OBJECTS = sorted((VECTORS / "error-objects").glob("*.json"))

# Expected class of every vector in errors/ (a new vector must be added here).
EXPECTED: dict[str, type[ex.GraphError]] = {
    "openapi-400-invalid-template-parameters.json": ex.InvalidParameterError,
    "openapi-400-malformed-request.json": ex.InvalidParameterError,
    "openapi-400-messages-encrypted-invalid-jwe-token.json": ex.GraphError,
    "openapi-400-messages-encrypted-missing-required-fields.json": ex.GraphError,
    "openapi-400-missing-feature-setting.json": ex.InvalidParameterError,
    "openapi-400-phone-not-registered.json": ex.InvalidParameterError,
    "openapi-401-expired-token.json": ex.AuthorizationError,
    "openapi-401-invalid-access-token.json": ex.AuthorizationError,
    "openapi-401-invalid-oauth-token-generic.json": ex.AuthorizationError,
    "openapi-401-messages-encrypted-invalid-access-token.json": ex.AuthorizationError,
    "openapi-401-missing-access-token.json": ex.AuthorizationError,
    "openapi-401-missing-token.json": ex.AuthorizationError,
    "openapi-403-feature-not-supported.json": ex.PermissionDeniedError,
    "openapi-403-insufficient-permissions.json": ex.PermissionDeniedError,
    "openapi-403-messages-encrypted-insufficient-permissions.json": ex.GraphError,
    "openapi-403-missing-permissions.json": ex.PermissionDeniedError,
    "openapi-403-not-linked-to-waba.json": ex.PermissionDeniedError,
    "openapi-403-template-not-approved.json": ex.PermissionDeniedError,
    "openapi-404-phone-number-not-found.json": ex.InvalidParameterError,
    "openapi-404-template-not-found.json": ex.TemplateError,
    "openapi-429-app-rate-limit-generic.json": ex.RequestLimitError,
    "openapi-429-business-rate-limit.json": ex.BusinessRateLimitError,
    "openapi-429-messages-encrypted-rate-limit-exceeded.json": ex.RequestLimitError,
    "openapi-429-rate-limit-exceeded.json": ex.RequestLimitError,
    "openapi-429-user-rate-limit.json": ex.RequestLimitError,
    "openapi-500-messages-encrypted-internal-server-error.json": ex.ServiceUnavailableError,
    "openapi-500-service-unavailable.json": ex.ServiceUnavailableError,
    "openapi-500-unexpected-error-generic.json": ex.ServiceUnavailableError,
    "openapi-500-unexpected-error.json": ex.UnknownServiceError,
    "pywa-190-expired-access-token.json": ex.AuthorizationError,
    "whatsapp-api-js-190-cannot-parse-access-token.json": ex.AuthorizationError,
}


def _status(path: Path) -> int:
    match = re.match(r"openapi-(\d{3})-", path.name)
    return int(match.group(1)) if match else 401


def test_every_error_vector_has_an_expectation() -> None:
    assert ERRORS, f"no error vectors under {VECTORS}"
    assert {p.name for p in ERRORS} == set(EXPECTED)


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.name)
def test_error_vector_parses_into_its_class(path: Path) -> None:
    body = load(path)
    error = ex.GraphError.from_response(_status(path), body)
    raw = body["error"]
    assert type(error) is EXPECTED[path.name]
    assert error.code == raw["code"]
    assert error.http_status == _status(path)
    assert error.subcode == raw.get("error_subcode")
    assert error.fbtrace_id == raw.get("fbtrace_id")
    assert error.title == raw["message"]
    if raw.get("is_transient"):
        assert error.is_transient
    assert str(raw["code"]) in ex.human_reason(error)


@pytest.mark.parametrize("path", ERROR_OBJECTS, ids=lambda p: p.name)
def test_status_error_objects(path: Path) -> None:
    raw = load(path)
    error = ex.GraphError.from_status_error(raw)
    expected = {131047: ex.ReEngagementError, 131053: ex.MediaUploadError}[raw["code"]]
    assert type(error) is expected
    assert error.title == raw["title"]
    assert error.details == raw["error_data"]["details"]
    assert not error.is_transient
    assert error.http_status is None


def _webhook_errors(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [e for e in node.get("errors", []) if isinstance(e, dict)] if "errors" in node else []
        return found + [e for v in node.values() for e in _webhook_errors(v)]
    if isinstance(node, list):
        return [e for v in node for e in _webhook_errors(v)]
    return []


def test_every_error_inside_webhook_vectors_parses() -> None:
    errors = [e for path in WEBHOOK_FILES for e in _webhook_errors(load(path))]
    assert errors, "expected some errors[] in the webhook vectors"
    parsed = [ex.GraphError.from_status_error(e) for e in errors]
    assert all(p.code == e["code"] for p, e in zip(parsed, errors, strict=True))
    assert any(isinstance(p, ex.ExperimentNumberError) for p in parsed)  # the failed status carries 130472
    assert any(isinstance(p, ex.UnsupportedMessageTypeError) for p in parsed)


@pytest.mark.parametrize(("code", "cls", "category", "transient"), [
    (4, ex.RequestLimitError, ex.ThrottlingError, True),
    (80007, ex.BusinessRateLimitError, ex.ThrottlingError, True),
    (130429, ex.ThroughputExceededError, ex.ThrottlingError, True),
    (131056, ex.PairRateLimitError, ex.ThrottlingError, True),
    (1, ex.UnknownServiceError, ex.ServiceError, True),
    (2, ex.ServiceUnavailableError, ex.ServiceError, True),
    (131000, ex.UnknownServiceError, ex.ServiceError, True),
    (131016, ex.ServiceUnavailableError, ex.ServiceError, True),
    (131057, ex.MaintenanceError, ex.ServiceError, True),
    (0, ex.AuthorizationError, ex.AuthorizationError, False),
    (190, ex.AuthorizationError, ex.AuthorizationError, False),
    (3, ex.PermissionDeniedError, ex.PermissionDeniedError, False),
    (10, ex.PermissionDeniedError, ex.PermissionDeniedError, False),
    (299, ex.PermissionDeniedError, ex.PermissionDeniedError, False),
    (131047, ex.ReEngagementError, ex.ReEngagementError, False),
    (131026, ex.UndeliverableError, ex.RecipientError, False),
    (131051, ex.UnsupportedMessageTypeError, ex.RecipientError, False),
    (132001, ex.TemplateError, ex.TemplateError, False),
    (132016, ex.TemplateError, ex.TemplateError, False),
    (100, ex.InvalidParameterError, ex.ParameterError, False),
    (131008, ex.MissingParameterError, ex.ParameterError, False),
    (131009, ex.ParameterValueError, ex.ParameterError, False),
    (368, ex.PolicyError, ex.PolicyError, False),
    (131048, ex.PolicyError, ex.PolicyError, False),
    (131049, ex.PolicyError, ex.PolicyError, False),
    (133010, ex.NotRegisteredError, ex.RegistrationError, False),
    (131053, ex.MediaUploadError, ex.MediaError, False),
])
def test_class_by_code(code: int, cls: type[ex.GraphError], category: type[ex.GraphError], transient: bool) -> None:
    error = ex.GraphError.from_code(code, "t", "d", http_status=500)  # a known code ignores the HTTP status
    assert type(error) is cls
    assert isinstance(error, category)
    assert error.is_transient is transient
    assert isinstance(error, ex.DispatchError) and not isinstance(error, ex.TransportError)


def test_flags() -> None:
    assert ex.ThroughputExceededError.slows_lane and ex.PairRateLimitError.slows_lane
    assert not ex.RequestLimitError.slows_lane
    assert ex.AuthorizationError.needs_reauth and not ex.PermissionDeniedError.needs_reauth
    assert ex.GraphError.from_code(130429).retry_after == 1.0
    assert ex.GraphError.from_code(130429, retry_after=7.5).retry_after == 7.5
    assert ex.GraphError.from_code(131026).retry_after is None


@pytest.mark.parametrize(("status", "hint", "transient"), [(500, None, True), (503, False, True), (400, None, False),
                                                           (400, True, True)])
def test_unknown_code(status: int, hint: bool | None, transient: bool) -> None:
    error = ex.GraphError.from_code(987654, "odd", http_status=status, transient_hint=hint)
    assert type(error) is ex.GraphError
    assert error.is_transient is transient
    assert ex.GraphError.is_transient is False  # the instance flag never leaks into the class


def test_graph_message_prefix_and_details() -> None:
    body = {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
                      "error_data": {"messaging_product": "whatsapp", "details": "Too many messages"},
                      "error_subcode": 2494055, "fbtrace_id": "Az8or"}}
    error = ex.GraphError.from_response(400, body)
    assert isinstance(error, ex.ThroughputExceededError)
    assert (error.title, error.details, error.subcode) == ("Rate limit hit", "Too many messages", 2494055)
    assert ex.human_reason(error) == "Meta error 130429: Rate limit hit (Too many messages)"


@pytest.mark.parametrize("body", [None, [], {}, {"error": "x"}, {"error": {"message": "no code"}},
                                  {"error": {"code": "abc"}}])
def test_from_response_refuses_non_graph_bodies(body: Any) -> None:
    with pytest.raises(ValueError):
        ex.GraphError.from_response(500, body)


def test_duplicate_codes_are_refused() -> None:
    with pytest.raises(TypeError):
        type("Clash", (ex.GraphError,), {"codes": frozenset({130429})})
    assert ex.GraphError.class_for(130429) is ex.ThroughputExceededError


def test_transport_hierarchy_and_reasons() -> None:
    assert issubclass(ex.UnexpectedResponse, ex.AmbiguousOutcome)
    assert issubclass(ex.AmbiguousOutcome, ex.TransportError)
    assert ex.TransportError.is_transient and ex.AmbiguousOutcome.is_transient
    assert not ex.RequestRejected.is_transient
    assert ex.human_reason(ex.AmbiguousOutcome("POST x: ReadTimeout")).startswith("outcome unknown")
    assert ex.human_reason(ex.TransportError("refused")).startswith("network error")
    reason = ex.human_reason(ex.GraphError.from_code(131047, "Re-engagement message", "x\n" * 400))
    assert "\n" not in reason and len(reason) <= 300 and "131047" in reason
