"""AES-256-GCM encryption of Meta access tokens, with key ids and rotation.

Only the dispatcher loads the keys (architecture rule 1). Several keys may be loaded at once:
the newest (last listed) encrypts, any loaded key decrypts, so keys rotate without downtime:
add the new key everywhere, run ``vault.rotate``, then drop the old key.

Ciphertext layout: ``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``.
The associated data binds the ciphertext to its format version, its key id and its row (the
WABA id), so a ciphertext copied to another row, or relabelled with another key id, does not
decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.exceptions import DecryptionError, KeySpecError, UnknownKeyError

VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
# Short enough that a base64 key (43+ characters) can never pass as an id and be echoed in an error.
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_AAD_PREFIX = b"aerostic/whatsapp-token"


def _check_key_id(key_id: str, where: str) -> None:
    if not _KEY_ID.fullmatch(key_id):
        raise KeySpecError(f"{where}: invalid key id (1-32 of letters, digits, '.', '_', '-', starting "
                           "with a letter or digit)")


def _decode_key(encoded: str, where: str) -> bytes:
    """URL-safe base64, padding optional; errors never repeat the input."""
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise KeySpecError(f"{where}: key is not valid URL-safe base64") from None


def _parse_spec(spec: str) -> list[tuple[str, bytes]]:
    entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
    if not entries:
        raise KeySpecError("empty key spec: expected 'kid:<urlsafe-base64 32-byte key>[,…]'")
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(entries, start=1):
        where = f"key spec entry {number}"
        key_id, sep, encoded = entry.partition(":")
        if not sep:
            raise KeySpecError(f"{where}: expected 'kid:<urlsafe-base64 key>'")
        _check_key_id(key_id.strip(), where)
        keys.append((key_id.strip(), _decode_key(encoded.strip(), where)))
    return keys


class Vault:
    """A set of AES-256-GCM keys by id; the last one encrypts, all of them decrypt."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeySpecError("a vault needs at least one key")
        self._ciphers: dict[str, AESGCM] = {}
        for number, (key_id, key) in enumerate(keys, start=1):
            where = f"key {number}"
            _check_key_id(key_id, where)
            if key_id in self._ciphers:
                raise KeySpecError(f"{where}: duplicate key id {key_id!r}")
            if len(key) != KEY_SIZE:
                raise KeySpecError(f"{where} ({key_id!r}): key must be {KEY_SIZE} bytes, got {len(key)}")
            self._ciphers[key_id] = AESGCM(key)
        self._current = keys[-1][0]

    @classmethod
    def from_spec(cls, spec: str) -> Vault:
        """Build from ``"kid1:<urlsafe-base64 32 bytes>,kid2:<…>"``; the last entry is the newest."""
        return cls(_parse_spec(spec))

    @property
    def current_key_id(self) -> str:
        """The id of the key that encrypts."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every loaded key id, oldest first."""
        return tuple(self._ciphers)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._ciphers

    def __repr__(self) -> str:
        return f"Vault(key_ids={list(self._ciphers)!r}, current={self._current!r})"

    def encrypt(self, plaintext: str, *, aad: str) -> tuple[bytes, str]:
        """Encrypt under the newest key; return ``(ciphertext, key_id)``."""
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext.encode(), _associated(self._current, aad))
        return bytes([VERSION]) + nonce + sealed, self._current

    def decrypt(self, ciphertext: bytes, key_id: str, *, aad: str) -> str:
        """Decrypt a ciphertext made under ``key_id`` for the row ``aad``."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(f"key id {key_id!r} is not loaded (loaded: {', '.join(self._ciphers)})")
        if len(ciphertext) < 1 + NONCE_SIZE + TAG_SIZE or ciphertext[0] != VERSION:
            raise DecryptionError("ciphertext is truncated or of an unknown format version")
        nonce, sealed = ciphertext[1:1 + NONCE_SIZE], ciphertext[1 + NONCE_SIZE:]
        try:
            plaintext = cipher.decrypt(nonce, sealed, _associated(key_id, aad))
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication (tampered, wrong row or wrong key)") from None
        try:
            return plaintext.decode()
        except UnicodeDecodeError:
            raise DecryptionError("decrypted token is not UTF-8") from None


def _associated(key_id: str, aad: str) -> bytes:
    # Key ids cannot contain NUL, so the fields cannot run into each other.
    return b"\x00".join((_AAD_PREFIX, bytes([VERSION]), key_id.encode(), aad.encode()))


def generate_key_spec(key_id: str) -> str:
    """A fresh ``kid:<urlsafe-base64 key>`` entry for operators to append to the key spec."""
    _check_key_id(key_id, "generate_key_spec")
    key = AESGCM.generate_key(bit_length=KEY_SIZE * 8)
    return f"{key_id}:{base64.urlsafe_b64encode(key).decode().rstrip('=')}"
