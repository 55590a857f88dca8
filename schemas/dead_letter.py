"""The dead-letter record: a record a consumer could not handle, kept whole with why and where from.

One dead-letter topic per consuming group (``schemas.catalogue.dead_letters``). The original
key and value travel base64-encoded, so ``aerostic dlq replay`` can put back exactly the bytes
that failed once the cause is fixed.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.events import Event, derived_event_id

MAX_ERROR_CHARS = 2000


class DeadLetter(Event):
    """One record a group set aside (its handling raised for a reason of its own)."""

    kind: Literal["dead_letter"] = "dead_letter"
    group: str
    source_topic: str
    partition: int
    offset: int
    where: str | None = None  # set when only part of the source record was set aside (e.g. one change)
    key_b64: str | None = None
    value_b64: str
    error_type: str
    error: str = Field(max_length=MAX_ERROR_CHARS)
    failed_at: datetime

    @classmethod
    def of(cls, *, group: str, topic: str, partition: int, offset: int, key: bytes | None, value: bytes,
           error: BaseException, at: datetime, where: str | None = None) -> DeadLetter:
        return cls(event_id=derived_event_id("dead-letter", group, topic, str(partition), str(offset), where or ""),
                   group=group, source_topic=topic, partition=partition, offset=offset, where=where,
                   key_b64=base64.b64encode(key).decode() if key is not None else None,
                   value_b64=base64.b64encode(value).decode(), error_type=type(error).__name__,
                   error=str(error)[:MAX_ERROR_CHARS], failed_at=at)

    @property
    def key(self) -> bytes | None:
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None

    @property
    def value(self) -> bytes:
        return base64.b64decode(self.value_b64)
