"""tenants.passwords: scrypt hashing, its encoded format, and refusal of tampered hashes."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator

import pytest

from tenants import passwords
from tenants.passwords import (
    HASH_BYTES,
    SALT_BYTES,
    hash_password,
    needs_rehash,
    spend_equal_work,
    verify_password,
)

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


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The reference: Python's own hashlib.scrypt (OpenSSL), not the code under test."""
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=256 * 1024 * 1024)


def _encode(salt: bytes, n: int, r: int, p: int, digest: bytes, scheme: str = "scrypt") -> str:
    b64 = base64.b64encode
    return f"{scheme}${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def test_stored_hash_is_scrypt_of_the_password_with_its_parameters(stored: str) -> None:
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", passwords.N, passwords.R, passwords.P)
    expected = _scrypt(PASSWORD, base64.b64decode(salt), int(n), int(r), int(p))
    assert base64.b64decode(digest) == expected
    assert _scrypt("not " + PASSWORD, base64.b64decode(salt), int(n), int(r), int(p)) != expected


@pytest.mark.parametrize(("n", "r", "p"), [(2**10, 8, 1), (2**11, 4, 2), (2**15, 8, 1)])
def test_a_hash_made_elsewhere_with_other_parameters_verifies(n: int, r: int, p: int) -> None:
    """The stored parameters are honoured, so the cost can be raised later without breaking old hashes."""
    salt = bytes(range(SALT_BYTES))
    encoded = _encode(salt, n, r, p, _scrypt(PASSWORD, salt, n, r, p))
    assert verify_password(PASSWORD, encoded)
    assert not verify_password(PASSWORD + "!", encoded)


def test_format(stored: str) -> None:
    match = FORMAT.fullmatch(stored)
    assert match is not None
    n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    assert (n, r, p) == (2**17, 8, 1)  # OWASP's parameters for scrypt
    assert len(base64.b64decode(match.group(4))) == SALT_BYTES
    assert len(base64.b64decode(match.group(5))) == HASH_BYTES
    assert PASSWORD not in stored


def test_same_password_hashes_differ(stored: str) -> None:
    again = hash_password(PASSWORD)
    assert again != stored and again.split("$")[4] != stored.split("$")[4]
    assert verify_password(PASSWORD, again)


# --- tampering ----------------------------------------------------------------------------------
# A cheap hash made with hashlib (n = 2**10), so that each case is fast and independent of hash_password.
SALT = bytes(range(100, 100 + SALT_BYTES))
CHEAP = (2**10, 8, 1)
GOOD = _encode(SALT, *CHEAP, _scrypt(PASSWORD, SALT, *CHEAP))


def _with(encoded: str, index: int, value: str) -> str:
    parts = encoded.split("$")
    parts[index] = value
    return "$".join(parts)


def _flip(b64: str, position: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[position] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int, int, int]]]:
    """Every scrypt derivation the code under test runs, as (salt length, n, r, p)."""
    calls: list[tuple[int, int, int, int]] = []
    real = passwords._derive

    def spy(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        calls.append((len(salt), n, r, p))
        return real(password, salt, n, r, p)

    monkeypatch.setattr(passwords, "_derive", spy)
    yield calls


def test_the_untampered_hash_verifies() -> None:
    """The control for every case below: only the tampering can make them fail."""
    assert verify_password(PASSWORD, GOOD)


@pytest.mark.parametrize("field", [4, 5], ids=["salt", "hash"])
@pytest.mark.parametrize("position", [0, 7, -1], ids=["first-byte", "middle-byte", "last-byte"])
def test_a_flipped_bit_of_salt_or_hash_is_refused(field: int, position: int) -> None:
    tampered = _with(GOOD, field, _flip(GOOD.split("$")[field], position))
    assert tampered != GOOD
    assert not verify_password(PASSWORD, tampered)


@pytest.mark.parametrize(("field", "value"), [(1, "2048"), (1, "512"), (2, "4"), (2, "9"), (3, "2")],
                         ids=["n-raised", "n-lowered", "r-lowered", "r-raised", "p-raised"])
def test_changed_parameters_are_refused(field: int, value: str, derivations: list[tuple[int, int, int, int]]) -> None:
    """Well-formed, allowed parameters that are not the ones the hash was made with: the derivation uses
    the stored (tampered) parameters, so the digest no longer matches."""
    tampered = _with(GOOD, field, value)
    assert not verify_password(PASSWORD, tampered)
    _, n, r, p, _, _ = tampered.split("$")
    assert derivations == [(SALT_BYTES, int(n), int(r), int(p))]


def _refused_without_work(encoded: str, derivations: list[tuple[int, int, int, int]]) -> None:
    assert not verify_password(PASSWORD, encoded)
    assert derivations == [], "a refused hash must be refused before any scrypt work"


# Each of these would verify if its check were missing: the digest is the right scrypt for what is stored.
@pytest.mark.parametrize("encoded", [
    _encode(SALT, *CHEAP, _scrypt(PASSWORD, SALT, *CHEAP), scheme="bcrypt"),
    _encode(SALT[:8], *CHEAP, _scrypt(PASSWORD, SALT[:8], *CHEAP)),
    _encode(SALT, 2**4, 33, 1, _scrypt(PASSWORD, SALT, 2**4, 33, 1)),
    _encode(SALT, 2**4, 1, 17, _scrypt(PASSWORD, SALT, 2**4, 1, 17)),
    _encode(SALT, *CHEAP, _scrypt(PASSWORD, SALT, *CHEAP)[:16]),
], ids=["other-scheme", "short-salt", "r-too-large", "p-too-large", "short-hash"])
def test_disallowed_but_matching_hashes_are_refused(encoded: str,
                                                    derivations: list[tuple[int, int, int, int]]) -> None:
    _refused_without_work(encoded, derivations)


@pytest.mark.parametrize("tamper", [
    lambda s: _with(s, 1, str(2**21)),  # above MAX_N: one verification would cost 2 GiB and seconds
    lambda s: _with(s, 1, str(2**30)),
    lambda s: _with(s, 1, "1000"),  # not a power of two
    lambda s: _with(s, 1, "1"),
    lambda s: _with(s, 2, "0"),
    lambda s: _with(s, 3, "0"),
    lambda s: _with(s, 1, "-1024"),
    lambda s: _with(s, 5, "!!notbase64!!"),
    lambda s: _with(s, 4, "!!notbase64!!"),
    lambda s: s.rsplit("$", 1)[0],  # a part missing
    lambda s: s + "$extra",
    lambda _s: "",
], ids=["n-above-max", "n-absurd", "n-not-power-of-two", "n-one", "r-zero", "p-zero", "n-negative",
        "hash-not-base64", "salt-not-base64", "part-missing", "part-extra", "empty"])
def test_malformed_or_dangerous_hashes_are_refused_without_work(
        tamper: Callable[[str], str], derivations: list[tuple[int, int, int, int]]) -> None:
    tampered = tamper(GOOD)
    assert tampered != GOOD
    _refused_without_work(tampered, derivations)


def test_spend_equal_work_does_one_verification_at_the_current_cost(
        derivations: list[tuple[int, int, int, int]]) -> None:
    """An unknown account costs one scrypt at the parameters of a fresh hash, like a known account."""
    spend_equal_work(PASSWORD)  # the dummy hash may be made on first use; only the second call is counted
    derivations.clear()
    spend_equal_work(PASSWORD)
    assert derivations == [(SALT_BYTES, passwords.N, passwords.R, passwords.P)]
    derivations.clear()
    assert verify_password(PASSWORD, hash_password(PASSWORD))
    assert derivations[-1] == (SALT_BYTES, passwords.N, passwords.R, passwords.P)


# --- rehash ---------------------------------------------------------------------------------------


def test_a_hash_at_the_current_parameters_needs_no_rehash(stored: str) -> None:
    assert not needs_rehash(stored)
    assert not needs_rehash(stored, passwords.N)


@pytest.mark.parametrize(("n", "r", "p"), [(2**14, 8, 1), (2**16, 8, 1), (2**17, 4, 1), (2**18, 1, 1)],
                         ids=["old-n-2^14", "n-2^16", "r-lowered", "stronger-n-weaker-r"])
def test_a_hash_below_the_current_parameters_needs_a_rehash(n: int, r: int, p: int) -> None:
    encoded = _encode(SALT, n, r, p, bytes(HASH_BYTES))
    assert needs_rehash(encoded)


@pytest.mark.parametrize("encoded", [_encode(SALT, 2**18, 8, 1, bytes(HASH_BYTES)),
                                     _encode(SALT, 2**17, 8, 2, bytes(HASH_BYTES))], ids=["n-2^18", "p-2"])
def test_a_hash_above_the_current_parameters_is_kept(encoded: str) -> None:
    """Never rehash down: a stronger stored hash stays (also when a test lowers the configured cost)."""
    assert not needs_rehash(encoded)


def test_rehash_follows_the_configured_cost() -> None:
    cheap = hash_password(PASSWORD, 2**12)
    assert cheap.split("$")[1:4] == [str(2**12), "8", "1"]
    assert verify_password(PASSWORD, cheap)
    assert not needs_rehash(cheap, 2**12)
    assert needs_rehash(cheap, 2**13) and needs_rehash(cheap)
    assert needs_rehash(GOOD) and not needs_rehash(GOOD, CHEAP[0])


def test_an_unreadable_hash_needs_a_rehash() -> None:
    assert needs_rehash("") and needs_rehash(_with(GOOD, 1, "1000"))


def test_spend_equal_work_follows_the_configured_cost(derivations: list[tuple[int, int, int, int]]) -> None:
    spend_equal_work(PASSWORD, 2**11)
    derivations.clear()
    spend_equal_work(PASSWORD, 2**11)
    assert derivations == [(SALT_BYTES, 2**11, passwords.R, passwords.P)]


def test_owasp_parameters_fit_in_the_memory_allowed() -> None:
    """hashlib's default maxmem (32 MiB) would refuse N=2^17; the derivation raises it to what is needed."""
    salt = bytes(SALT_BYTES)
    assert passwords._derive(PASSWORD, salt, 2**17, 8, 1) == _scrypt(PASSWORD, salt, 2**17, 8, 1)
    with pytest.raises(ValueError):
        hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**17, r=8, p=1, dklen=HASH_BYTES)
