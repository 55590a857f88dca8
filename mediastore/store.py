"""The object-store interface every media store implements, and the choice of one from the settings."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

CHUNK_BYTES = 256 * 1024
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,3}")


class NotFound(KeyError):
    """No object under that key."""


class TooLarge(ValueError):
    """The stream passed ``max_bytes``: nothing was stored."""


@dataclass(frozen=True, slots=True)
class Stored:
    size: int
    sha256: str  # hex


class ObjectStore(Protocol):
    async def put(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> Stored:
        """Store the stream under ``key`` (replacing it), or raise ``TooLarge`` and store nothing."""

    def get(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; raises ``NotFound`` on the first iteration when there is none."""

    async def delete(self, key: str) -> None:
        """Remove the object (no error when it is already gone)."""

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix/``; returns how many."""

    async def aclose(self) -> None: ...


def checked_key(key: str) -> str:
    """``key`` if it is a plain relative key (no ``..``, no leading slash), else ``ValueError``."""
    if not KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"not a valid object key: {key!r}")
    return key


class Digest:
    """Counts and hashes a stream as it passes; raises ``TooLarge`` past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.size, self._hash = max_bytes, 0, hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(f"more than {self.max_bytes} bytes")
        self._hash.update(chunk)

    def stored(self) -> Stored:
        return Stored(self.size, self._hash.hexdigest())
