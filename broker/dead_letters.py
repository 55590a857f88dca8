"""What the operator does with dead letters: list them, show one, replay them to where they came from.

Each consuming group has a dead-letter topic (``schemas.catalogue.dead_letters``). Replaying puts the
original key and value back on the source topic; downstream handling is idempotent, so replaying
a letter twice does no harm, but a letter whose cause is not fixed comes back as a new dead letter.
"""

from __future__ import annotations

import asyncio

from broker.producer import AsyncProducer
from broker.reading import read_all
from config.settings import CoreSettings
from schemas.catalogue import dead_letters
from schemas.dead_letter import DeadLetter


def read_letters(settings: CoreSettings, group: str, *, timeout: float = 30.0) -> list[tuple[int, DeadLetter]]:
    """(offset in the dead-letter topic, letter) of every dead letter of ``group``, oldest first."""
    topic = dead_letters(group).full_name(settings.topic_prefix)
    return [(msg.offset() or 0, DeadLetter.decode(msg.value() or b"")) for msg in read_all(settings, topic,
                                                                                          timeout=timeout)]


async def replay(settings: CoreSettings, producer: AsyncProducer, group: str, offsets: set[int] | None) -> int:
    """Put the letters at ``offsets`` (all when None) back on their source topics; return how many."""
    letters = await asyncio.get_running_loop().run_in_executor(None, read_letters, settings, group)
    chosen = [letter for offset, letter in letters if offsets is None or offset in offsets]
    await asyncio.gather(*(producer.send(letter.source_topic, letter.value, letter.key) for letter in chosen))
    return len(chosen)
