"""Errors of the token vault. Messages never contain a token or key material.

    VaultError
    ├── KeySpecError              the key spec is malformed (also a ValueError)
    ├── UnknownKeyError           a ciphertext names a key id that is not loaded
    ├── DecryptionError           authentication failed: tampered, wrong row or wrong key
    ├── AccountNotFoundError      no such WhatsApp account, or it holds no token (also a LookupError)
    ├── AccountOwnershipError     the WABA is connected to another tenant
    └── RotationIncompleteError   rows remain under key ids that are not loaded
"""

from __future__ import annotations


class VaultError(Exception):
    """Root of every vault error."""


class KeySpecError(VaultError, ValueError):
    """The ``kid:base64key,…`` spec is malformed; the message names the entry, never its key."""


class UnknownKeyError(VaultError):
    """The key id stored beside a ciphertext is not among the loaded keys."""


class DecryptionError(VaultError):
    """The ciphertext failed authentication (tampered, copied from another row, or wrong key)."""


class AccountNotFoundError(VaultError, LookupError):
    """No WhatsApp account row matches, or the row holds no token."""


class AccountOwnershipError(VaultError):
    """A tenant tried to store a token for a WABA that another tenant has connected."""


class RotationIncompleteError(VaultError):
    """Rotation moved what it could, but some rows are under key ids that are not loaded."""

    def __init__(self, *, rotated: int, remaining: int, key_ids: tuple[str, ...]) -> None:
        self.rotated = rotated
        self.remaining = remaining
        self.key_ids = key_ids
        super().__init__(f"rotated {rotated} token(s); {remaining} remain under key ids that are not loaded: "
                         f"{', '.join(key_ids)}")
