"""metasim.graph_errors: bodies shaped like Meta's real error bodies, statuses from Meta's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from metasim.graph_errors import CATALOGUE, ERROR_CODES_HREF, ErrorSpec, error_body, status_error
from tests.unit._vectors import VECTORS, load

ERROR_FILES: list[Path] = sorted((VECTORS / "errors").glob("*.json"))
OBJECT_FILES: list[Path] = sorted((VECTORS / "error-objects").glob("*.json"))
EMITTED = {0, 1, 2, 4, 100, 190, 368, 80007, 130429, 131000, 131016, 131026, 131031, 131047, 131048, 131049,
           131051, 131056, 131057, 132000, 132001, 132015, 132016, 133010}
# error_data is absent from the spec's examples but part of every WhatsApp error (reference §2.3).
WHATSAPP_KEYS = {"error_data"}


def real_error_keys() -> set[str]:
    return {key for path in ERROR_FILES for key in load(path)["error"]}


def test_vectors_present(vectors: Path) -> None:
    assert ERROR_FILES and OBJECT_FILES


def test_catalogue_covers_emitted_codes() -> None:
    assert set(CATALOGUE) >= EMITTED
    for code, spec in CATALOGUE.items():
        assert isinstance(spec, ErrorSpec) and spec.code == code and spec.title and spec.details
        assert spec.http_status in {400, 401, 403, 404, 429, 500, 503}


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_body_shape_matches_real_bodies(code: int) -> None:
    _, body = error_body(code)
    assert set(body) == {"error"}
    error = body["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(error) <= real_error_keys() | WHATSAPP_KEYS
    assert error["code"] == code and error["type"] == "OAuthException"
    assert isinstance(error["message"], str) and isinstance(error["fbtrace_id"], str)
    if "error_data" in error:
        assert error["error_data"]["messaging_product"] == "whatsapp"
        assert error["message"] == f"(#{code}) {CATALOGUE[code].title}"


@pytest.mark.parametrize(("code", "vector"), [
    (190, "pywa-190-expired-access-token.json"),
    (4, "openapi-429-app-rate-limit-generic.json"),
    (80007, "openapi-429-business-rate-limit.json"),
])
def test_platform_errors_have_exactly_the_real_keys(code: int, vector: str) -> None:
    _, body = error_body(code)
    real: dict[str, Any] = load(VECTORS / "errors" / vector)["error"]
    assert set(body["error"]) == set(real)
    assert {k: type(v) for k, v in body["error"].items()} == {k: type(v) for k, v in real.items()}


def test_whatsapp_error_matches_reference_example() -> None:
    status, body = error_body(130429)
    assert status == 400
    assert list(body["error"]) == ["message", "type", "code", "error_data", "error_subcode", "fbtrace_id"]
    assert body["error"]["message"] == "(#130429) Rate limit hit"
    assert body["error"]["error_data"] == {
        "messaging_product": "whatsapp",
        "details": "Message failed to send because there were too many messages sent from this phone number in a "
                   "short period of time",
    }


@pytest.mark.parametrize(("code", "status"), [(190, 401), (100, 400), (130429, 400), (132001, 404), (0, 401),
                                               (131000, 500), (131031, 403), (368, 403), (2, 503)])
def test_http_status(code: int, status: int) -> None:
    assert error_body(code)[0] == status == CATALOGUE[code].http_status


def test_expired_token_reads_like_meta() -> None:
    _, body = error_body(190)
    assert body["error"]["message"] == "Error validating access token: Session has expired"
    assert body["error"]["error_subcode"] == 463
    _, custom = error_body(190, message="Invalid OAuth access token - Cannot parse access token")
    assert custom["error"]["message"] == "Invalid OAuth access token - Cannot parse access token"


def test_details_and_message_overrides() -> None:
    _, body = error_body(100, details="Param text['body'] is required")
    assert body["error"]["message"] == "(#100) Invalid parameter"
    assert body["error"]["error_data"]["details"] == "Param text['body'] is required"
    _, body = error_body(132001, message="(#132001) Template name does not exist in the translation")
    assert body["error"]["message"] == "(#132001) Template name does not exist in the translation"


def test_fresh_fbtrace_id() -> None:
    ids = {error_body(131000)[1]["error"]["fbtrace_id"] for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) == 23 and i.isascii() for i in ids)


def test_unknown_code_raises() -> None:
    with pytest.raises(KeyError):
        error_body(999999)


def test_meta_titles() -> None:
    assert CATALOGUE[131047].title == "Re-engagement message"
    assert CATALOGUE[131026].title == "Message undeliverable"
    assert CATALOGUE[131056].title == "(Business Account, Consumer Account) pair rate limit hit"
    assert CATALOGUE[132000].title == "Number of parameters does not match the expected number of params"
    assert CATALOGUE[132001].title == "Template name does not exist in the translation"


@pytest.mark.parametrize("path", OBJECT_FILES, ids=[p.name for p in OBJECT_FILES])
def test_status_error_shape_matches_real_objects(path: Path) -> None:
    real: dict[str, Any] = load(path)
    made = status_error(131047)
    assert set(real) <= set(made) == {"code", "title", "message", "error_data", "href"}
    assert set(made["error_data"]) == set(real["error_data"]) == {"details"}


def test_status_error_re_engagement_equals_real() -> None:
    real = load(VECTORS / "error-objects" / "pywa-131047-re-engagement-message.json")
    assert status_error(131047) == real
    assert status_error(131026, details="custom")["error_data"] == {"details": "custom"}
    assert status_error(131026)["href"] == ERROR_CODES_HREF
