"""Dead letters → PostgreSQL, for the operator's view (``GET /admin/dead-letters``).

Only where each letter came from and why is stored; the record itself stays in its dead-letter
topic, from which ``aerostic dlq replay`` puts it back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import dead_letters
from schemas.dead_letter import DeadLetter


async def write_dead_letters(conn: AsyncConnection, letters: Sequence[DeadLetter]) -> None:
    """Insert each letter once. Text is cleaned of NUL (PostgreSQL refuses it): a letter about a bad record must
    never itself fail, or the projector's own dead letters would come back to it forever."""
    if not letters:
        return
    rows = [{"event_id": letter.event_id, "consumer_group": _text(letter.group),
             "source_topic": _text(letter.source_topic), "source_partition": letter.partition,
             "source_offset": letter.offset, "part": _text(letter.where) if letter.where else None,
             "error_type": _text(letter.error_type), "error": _text(letter.error), "failed_at": letter.failed_at}
            for letter in letters]
    await conn.execute(insert(dead_letters).values(rows).on_conflict_do_nothing(index_elements=["event_id"]))


def _text(value: str) -> str:
    return value.replace("\x00", "\\0")
