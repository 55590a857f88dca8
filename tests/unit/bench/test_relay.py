"""The bare relay: the customer named in a webhook, and a batch that waits only for its first record."""

import json
from typing import Any

from bench.relay import customer_of, forward_key, take


def test_customer_of_reads_the_sender_of_a_messages_webhook() -> None:
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "5"},
        "messages": [{"from": "919000000001", "id": "wamid.1", "type": "text", "text": {"body": "hi"}}]}}]}]}
    assert customer_of(json.dumps(body).encode()) == "919000000001"


class Record:
    def __init__(self, value: bytes, error: Any = None) -> None:
        self._value, self._error = value, error

    def value(self) -> bytes:
        return self._value

    def error(self) -> Any:
        return self._error


class FakeConsumer:
    def __init__(self, first: Record | None, rest: list[Record]) -> None:
        self.first, self.rest = first, rest
        self.calls: list[tuple[str, float]] = []

    def poll(self, timeout: float) -> Record | None:
        self.calls.append(("poll", timeout))
        return self.first

    def consume(self, count: int, timeout: float) -> list[Record]:
        self.calls.append(("consume", timeout))
        return self.rest[:count]


def test_take_waits_for_the_first_record_only_and_drops_errors() -> None:
    consumer = FakeConsumer(Record(b"a"), [Record(b"b"), Record(b"", error="partition EOF"), Record(b"c")])
    assert [m.value() for m in take(consumer, 500, 0.1)] == [b"a", b"b", b"c"]  # type: ignore[arg-type]
    assert consumer.calls == [("poll", 0.1), ("consume", 0)]


def test_take_returns_nothing_when_nothing_came() -> None:
    consumer = FakeConsumer(None, [Record(b"late")])
    assert take(consumer, 500, 0.1) == []  # type: ignore[arg-type]
    assert consumer.calls == [("poll", 0.1)]


def test_the_first_hop_keys_by_customer_and_the_others_keep_the_key() -> None:
    class Keyed(Record):
        def key(self) -> bytes:
            return b"919000000002"

    body = {"entry": [{"changes": [{"value": {"messages": [{"from": "919000000001"}]}}]}]}
    record = Keyed(json.dumps(body).encode())
    assert forward_key(0)(record) == "919000000001"
    assert forward_key(1)(record) == forward_key(3)(record) == b"919000000002"


class AssignedConsumer(FakeConsumer):
    """A consumer with two assigned partitions that records pauses and resumptions."""

    def __init__(self) -> None:
        super().__init__(None, [])
        self.paused: list[list[int]] = []
        self.resumed: list[list[int]] = []

    def assignment(self) -> list[int]:
        return [0, 1]

    def pause(self, partitions: list[int]) -> None:
        self.paused.append(partitions)

    def resume(self, partitions: list[int]) -> None:
        self.resumed.append(partitions)


def test_a_resting_hop_pauses_its_partitions_until_woken() -> None:
    from bench.relay import Resting

    consumer, resting = AssignedConsumer(), Resting()
    resting.take(consumer)  # type: ignore[arg-type]
    assert consumer.paused == [] and consumer.resumed == []
    resting.rest(True)
    resting.take(consumer)  # type: ignore[arg-type]
    resting.take(consumer)  # type: ignore[arg-type]
    assert consumer.paused == [[0, 1], [0, 1]] and consumer.resumed == []  # each take: a new partition rests too
    resting.rest(False)
    resting.take(consumer)  # type: ignore[arg-type]
    resting.take(consumer)  # type: ignore[arg-type]
    assert consumer.resumed == [[0, 1]]  # once


def test_a_wake_that_comes_while_a_take_pauses_is_applied_by_the_next_take() -> None:
    from bench.relay import Resting

    resting = Resting()

    class WokenDuringPause(AssignedConsumer):
        def pause(self, partitions: list[int]) -> None:
            super().pause(partitions)
            resting.rest(False)  # the wake's signal lands here, in the middle of the take

    consumer = WokenDuringPause()
    resting.rest(True)
    resting.take(consumer)  # type: ignore[arg-type]
    resting.take(consumer)  # type: ignore[arg-type]
    assert consumer.resumed == [[0, 1]]  # not left paused for ever
