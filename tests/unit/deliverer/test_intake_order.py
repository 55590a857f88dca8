"""The deliverer reads a batch in the order its records were written, whatever order the fetch returned them in."""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import Message

from deliverer.intake import in_record_order
from tests.unit.broker.fakes import FakeMessage

P = "t."


def _rec(topic: str, partition: int, offset: int, ms: int) -> FakeMessage:
    return FakeMessage(P + topic, partition, offset, timestamp_ms=ms)


def _order(*records: FakeMessage) -> list[tuple[str, int]]:
    ordered = in_record_order(cast(list[Message], list(records)), P)
    return [(cast(Any, m).topic()[len(P):], cast(Any, m).offset()) for m in ordered]


def test_a_hand_off_fetched_before_the_message_that_created_its_conversation_comes_after_it() -> None:
    handed_off = _rec("conversations.events", 3, 7, 1_000_005)
    created = _rec("wa.inbound", 1, 4, 1_000_000)
    assert _order(handed_off, created) == [("wa.inbound", 4), ("conversations.events", 7)]


def test_a_partition_keeps_its_offset_order_even_when_a_producers_clock_ran_behind() -> None:
    first, second = _rec("wa.inbound", 0, 1, 2_000), _rec("wa.inbound", 0, 2, 1_000)
    other = _rec("wa.statuses", 0, 9, 1_500)
    assert _order(first, second, other) == [("wa.statuses", 9), ("wa.inbound", 1), ("wa.inbound", 2)]


def test_records_of_one_millisecond_follow_the_topics_causal_order() -> None:
    status = _rec("wa.statuses", 0, 1, 5_000)
    result = _rec("outbound.results", 0, 1, 5_000)
    changed = _rec("conversations.events", 0, 1, 5_000)
    inbound = _rec("wa.inbound", 2, 1, 5_000)
    assert _order(status, result, changed, inbound) == [
        ("wa.inbound", 1), ("conversations.events", 1), ("outbound.results", 1), ("wa.statuses", 1)]
