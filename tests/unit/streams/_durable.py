"""PostgreSQL's ``conversation_state`` as the conversation processor sees it, in memory (unit tests only).

Stored as JSON, like the jsonb column, and with the same rule: a write never replaces a newer version.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import orjson

from streams.conversation_state import Conversation


class MemoryStates:
    """``DurableStates`` in a dict; ``loads`` counts the reads, each of which is one query in PostgreSQL."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, bytes]] = {}
        self.loads: list[list[str]] = []

    async def load(self, keys: Collection[str]) -> dict[str, Conversation]:
        self.loads.append(sorted(keys))
        return {k: self.get(k) for k in keys if k in self.rows}

    async def save(self, states: Mapping[str, Conversation], values: Mapping[str, bytes]) -> set[str]:
        stale = set()
        for key, conv in states.items():
            if key in self.rows and self.rows[key][0] > conv.version:
                stale.add(key)
            else:
                assert orjson.loads(values[key]) == orjson.loads(orjson.dumps(conv.to_dict()))
                self.rows[key] = (conv.version, values[key])
        return stale

    async def waiting(self, limit: int) -> list[tuple[str, Conversation]]:
        found = sorted(((k, self.get(k)) for k in self.rows), key=lambda kc: (kc[1].queued_at, kc[0]))
        return [(k, c) for k, c in found if c.state == "queued"][:limit]

    def get(self, key: str) -> Conversation:
        version, state = self.rows[key]
        conv = Conversation.from_dict(orjson.loads(state))
        conv.version = version
        return conv
