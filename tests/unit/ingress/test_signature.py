"""ingress.signature: Meta's X-Hub-Signature-256 against pywa's recorded, really signed request."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ingress.signature import PREFIX, Verifier, sign, verify
from tests.unit._vectors import SIGNATURES, WEBHOOKS


@pytest.fixture
def record(vectors: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SIGNATURES / "pywa-signed-text-message.json").read_bytes())
    return data


@pytest.fixture
def body(record: dict[str, Any]) -> bytes:
    raw = (WEBHOOKS.parent / record["body_file"]).read_bytes()
    # The file must be the exact bytes that were signed.
    assert len(raw) == record["body_length"] == 511
    assert hashlib.sha256(raw).hexdigest() == record["body_sha256"]
    return raw


@pytest.fixture
def secret(record: dict[str, Any]) -> bytes:
    return str(record["app_secret"]).encode()


@pytest.fixture
def header(record: dict[str, Any]) -> str:
    value = str(record["x_hub_signature_256"])
    assert record["header"] == "X-Hub-Signature-256"
    return value


def test_recorded_request_verifies(body: bytes, header: str, secret: bytes) -> None:
    assert verify(body, header, [secret]) is True


def test_sign_reproduces_the_recorded_header(body: bytes, header: str, secret: bytes) -> None:
    assert sign(body, secret) == header
    assert header.startswith(PREFIX) and len(header) == len(PREFIX) + 64


@pytest.mark.parametrize("position", [0, 1, 255, 510])
def test_flipped_byte_fails(body: bytes, header: str, secret: bytes, position: int) -> None:
    tampered = bytearray(body)
    tampered[position] ^= 0x01
    assert bytes(tampered) != body
    assert verify(bytes(tampered), header, [secret]) is False


def test_reserialized_body_fails(body: bytes, header: str, secret: bytes) -> None:
    reserialized = json.dumps(json.loads(body)).encode()
    assert reserialized != body
    assert verify(reserialized, header, [secret]) is False


def test_appended_newline_fails(body: bytes, header: str, secret: bytes) -> None:
    assert verify(body + b"\n", header, [secret]) is False


def test_wrong_secret_fails(body: bytes, header: str, secret: bytes) -> None:
    assert verify(body, header, [secret[:-1] + b"0"]) is False
    assert verify(body, header, [b"not-the-secret"]) is False


def test_no_secret_fails(body: bytes, header: str) -> None:
    assert verify(body, header, []) is False


@pytest.mark.parametrize("bad", [None, "", "sha256=", "sha1=", "SHA256=", "sha256:", "sha1"])
def test_missing_or_malformed_header_fails(body: bytes, header: str, secret: bytes, bad: str | None) -> None:
    if bad is not None and bad not in ("", "sha256="):
        bad = bad + header[len(PREFIX):]
    assert verify(body, bad, [secret]) is False


def test_bare_hex_without_prefix_fails(body: bytes, header: str, secret: bytes) -> None:
    assert verify(body, header[len(PREFIX):], [secret]) is False


def test_truncated_signature_fails(body: bytes, header: str, secret: bytes) -> None:
    assert verify(body, header[:-2], [secret]) is False


@pytest.mark.parametrize("order", ["current-first", "previous-first"])
def test_either_of_two_rotated_secrets_verifies(body: bytes, header: str, secret: bytes, order: str) -> None:
    other = b"0" * 32
    secrets = [secret, other] if order == "current-first" else [other, secret]
    assert verify(body, header, secrets) is True
    # and a body signed with the other secret verifies under the same pair
    assert verify(body, sign(body, other), secrets) is True


def test_two_wrong_secrets_fail(body: bytes, header: str) -> None:
    assert verify(body, header, [b"a" * 32, b"b" * 32]) is False


def test_uppercase_hex_verifies(body: bytes, header: str, secret: bytes) -> None:
    upper = PREFIX + header[len(PREFIX):].upper()
    assert upper != header
    assert verify(body, upper, [secret]) is True


def test_one_verifier_checks_body_after_body(body: bytes, header: str, secret: bytes) -> None:
    """The keyed HMAC is copied per body: a check leaves nothing behind for the next one."""
    check = Verifier([b"0" * 32, secret])
    tampered = body[:-1] + b" "
    assert [check(body, header), check(tampered, header), check(body, header), check(tampered, sign(tampered, secret))
            ] == [True, False, True, True]
