"""tenants.passwords: scrypt hashing, its encoded format, and refusal of tampered hashes."""

from __future__ import annotations

import base64
import re

import pytest

from tenants.passwords import HASH_BYTES, SALT_BYTES, hash_password, spend_equal_work, verify_password

PASSWORD = "correct horse battery staple"
FORMAT = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PASSWORD)


def test_round_trip(stored: str) -> None:
    assert verify_password(PASSWORD, stored)


@pytest.mark.parametrize("attempt", ["", "correct horse battery stapl", "Correct horse battery staple",
                                     PASSWORD + " "])
def test_wrong_password(stored: str, attempt: str) -> None:
    assert not verify_password(attempt, stored)


def test_format(stored: str) -> None:
    match = FORMAT.fullmatch(stored)
    assert match is not None
    n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    assert n in (2**14, 2**15) and r == 8 and p == 1
    assert len(base64.b64decode(match.group(4))) == SALT_BYTES
    assert len(base64.b64decode(match.group(5))) == HASH_BYTES
    assert PASSWORD not in stored


def test_same_password_hashes_differ(stored: str) -> None:
    again = hash_password(PASSWORD)
    assert again != stored and again.split("$")[4] != stored.split("$")[4]
    assert verify_password(PASSWORD, again)


def _with(stored: str, index: int, value: str) -> str:
    parts = stored.split("$")
    parts[index] = value
    return "$".join(parts)


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("tamper", [
    lambda s: _with(s, 5, _flip(s.split("$")[5])),  # hash changed
    lambda s: _with(s, 4, _flip(s.split("$")[4])),  # salt changed
    lambda s: _with(s, 1, "8192"),  # cost lowered
    lambda s: _with(s, 1, "1000"),  # not a power of two
    lambda s: _with(s, 1, str(2**30)),  # absurd cost
    lambda s: _with(s, 0, "bcrypt"),
    lambda s: _with(s, 5, "!!notbase64!!"),
    lambda s: s.rsplit("$", 1)[0],  # a part missing
    lambda s: s + "$extra",
    lambda _s: "",
])
def test_tampered_hash_is_refused(stored: str, tamper: object) -> None:
    assert callable(tamper)
    assert not verify_password(PASSWORD, tamper(stored))


def test_spend_equal_work_accepts_anything() -> None:
    spend_equal_work(PASSWORD)
