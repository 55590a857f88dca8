"""The token cipher: AES-256-GCM with key ids, row binding and rotation-friendly key sets."""

from __future__ import annotations

import base64

import pytest

from vault.cipher import Vault, generate_key_spec
from vault.exceptions import DecryptionError, KeySpecError, UnknownKeyError, VaultError

TOKEN = "EAAGm0PX4ZCpsBAsecret-token-value"
WABA = "102290129340398"


def key_text(byte: int, length: int = 32) -> str:
    return base64.urlsafe_b64encode(bytes([byte]) * length).decode()


KEY_A = key_text(0xA1)
KEY_B = key_text(0xB2)


@pytest.fixture
def vault_ab() -> Vault:
    return Vault.from_spec(f"a:{KEY_A},b:{KEY_B}")


def test_round_trip(vault_ab: Vault) -> None:
    ciphertext, key_id = vault_ab.encrypt(TOKEN, aad=WABA)
    assert vault_ab.decrypt(ciphertext, key_id, aad=WABA) == TOKEN
    assert TOKEN.encode() not in ciphertext


def test_unicode_round_trip(vault_ab: Vault) -> None:
    ciphertext, key_id = vault_ab.encrypt("tökén ✓", aad=WABA)
    assert vault_ab.decrypt(ciphertext, key_id, aad=WABA) == "tökén ✓"


def test_newest_key_encrypts(vault_ab: Vault) -> None:
    assert vault_ab.current_key_id == "b"
    assert vault_ab.key_ids == ("a", "b")
    assert vault_ab.encrypt(TOKEN, aad=WABA)[1] == "b"


def test_old_key_still_decrypts(vault_ab: Vault) -> None:
    ciphertext, key_id = Vault.from_spec(f"a:{KEY_A}").encrypt(TOKEN, aad=WABA)
    assert key_id == "a"
    assert vault_ab.decrypt(ciphertext, key_id, aad=WABA) == TOKEN


def test_unknown_key_id(vault_ab: Vault) -> None:
    ciphertext, _ = vault_ab.encrypt(TOKEN, aad=WABA)
    with pytest.raises(UnknownKeyError, match="'c'"):
        vault_ab.decrypt(ciphertext, "c", aad=WABA)
    with pytest.raises(UnknownKeyError):
        Vault.from_spec(f"a:{KEY_A}").decrypt(ciphertext, "b", aad=WABA)


def test_relabelled_key_id_fails(vault_ab: Vault) -> None:
    ciphertext, _ = vault_ab.encrypt(TOKEN, aad=WABA)
    with pytest.raises(DecryptionError):
        vault_ab.decrypt(ciphertext, "a", aad=WABA)


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_tampered_byte(vault_ab: Vault, position: int) -> None:
    ciphertext, key_id = vault_ab.encrypt(TOKEN, aad=WABA)
    tampered = bytearray(ciphertext)
    tampered[position] ^= 0x01
    with pytest.raises(DecryptionError) as info:
        vault_ab.decrypt(bytes(tampered), key_id, aad=WABA)
    assert TOKEN not in str(info.value)


def test_truncated(vault_ab: Vault) -> None:
    ciphertext, key_id = vault_ab.encrypt(TOKEN, aad=WABA)
    for cut in (0, 1, 13, 28):
        with pytest.raises(DecryptionError):
            vault_ab.decrypt(ciphertext[:cut], key_id, aad=WABA)


def test_wrong_aad(vault_ab: Vault) -> None:
    ciphertext, key_id = vault_ab.encrypt(TOKEN, aad=WABA)
    with pytest.raises(DecryptionError):
        vault_ab.decrypt(ciphertext, key_id, aad="999999999999999")


def test_two_encryptions_differ(vault_ab: Vault) -> None:
    first, _ = vault_ab.encrypt(TOKEN, aad=WABA)
    second, _ = vault_ab.encrypt(TOKEN, aad=WABA)
    assert first != second
    assert first[1:13] != second[1:13]  # fresh nonce


def test_layout(vault_ab: Vault) -> None:
    ciphertext, _ = vault_ab.encrypt(TOKEN, aad=WABA)
    assert ciphertext[0] == 1
    assert len(ciphertext) == 1 + 12 + len(TOKEN.encode()) + 16


@pytest.mark.parametrize(("spec", "expected"), [
    ("", "empty"),
    (" , ,", "empty"),
    (KEY_A, "entry 1"),
    (f"a:{key_text(0xA1, 16)}", "32 bytes, got 16"),
    (f"a:{key_text(0xA1, 33)}", "32 bytes, got 33"),
    (f"a:{KEY_A},a:{KEY_B}", "duplicate key id 'a'"),
    (f"a:{KEY_A},b:{KEY_B[:-3]}!!", "base64"),
    (f":{KEY_A}", "invalid key id"),
    (f"{KEY_A}:{KEY_B}", "invalid key id"),
])
def test_bad_spec_errors_hide_keys(spec: str, expected: str) -> None:
    with pytest.raises(KeySpecError, match=expected) as info:
        Vault.from_spec(spec)
    message = str(info.value)
    for secret in (KEY_A, KEY_B, KEY_A.rstrip("="), KEY_B.rstrip("="), KEY_A[:16], KEY_B[:16]):
        assert secret not in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, VaultError)


def test_spec_tolerates_whitespace_and_missing_padding() -> None:
    vault = Vault.from_spec(f" a : {KEY_A.rstrip('=')} ,\n b:{KEY_B} ,")
    assert vault.key_ids == ("a", "b")


def test_repr_hides_keys(vault_ab: Vault) -> None:
    text = repr(vault_ab) + str(vault_ab)
    assert "'a'" in text and "'b'" in text
    for secret in (KEY_A[:16], KEY_B[:16], (b"\xa1" * 8).hex(), repr(b"\xa1" * 8)[2:-1]):
        assert secret not in text


def test_generate_key_spec() -> None:
    entry = generate_key_spec("2025-06")
    key_id, _, encoded = entry.partition(":")
    assert key_id == "2025-06"
    assert len(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))) == 32
    assert generate_key_spec("k") != generate_key_spec("k")
    vault = Vault.from_spec(f"a:{KEY_A},{entry}")
    assert vault.current_key_id == "2025-06"
    ciphertext, kid = vault.encrypt(TOKEN, aad=WABA)
    assert vault.decrypt(ciphertext, kid, aad=WABA) == TOKEN


def test_generate_key_spec_refuses_bad_id() -> None:
    with pytest.raises(KeySpecError):
        generate_key_spec("bad id")


def test_constructor_checks_keys() -> None:
    with pytest.raises(KeySpecError, match="at least one key"):
        Vault([])
    with pytest.raises(KeySpecError, match="32 bytes"):
        Vault([("a", b"short")])
