"""broker.consumer: one configuration for every consumer, a subscription that counts its assignments, and a commit
that checks each partition's error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from broker.consumer import (
    BACKGROUND_GROUPS,
    CommitError,
    build_consumer,
    commit,
    consumer_config,
    last_offsets,
    subscribe,
)
from config.settings import CoreSettings
from schemas.catalogue import (
    AI_GROUP,
    CAMPAIGN_EXPANDER_GROUP,
    CAMPAIGN_FUNNEL_GROUP,
    CAMPAIGN_RECIPIENTS_GROUP,
    CONVERSATIONS_GROUP,
    DELIVERER_GROUP,
    DISPATCHER_GROUP,
    PROJECTOR_GROUP,
    ROUTER_GROUP,
)
from tests.unit.broker.fakes import FakeMessage

SETTINGS = CoreSettings(environment="test", topic_prefix="blue.", kafka_fetch_wait_ms=20)


@dataclass
class Answer:
    """What confluent-kafka's ``TopicPartition`` answers carry (its ``error`` cannot be set from Python)."""

    topic: str
    partition: int
    error: KafkaError | None


class FakeConsumer:
    """Answers ``commit`` the way confluent-kafka does: the partitions, each with its own error (or None)."""

    def __init__(self, errors: dict[int, KafkaError | None], raises: KafkaException | None = None) -> None:
        self.errors, self.raises = errors, raises
        self.committed: list[TopicPartition] = []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> list[Answer]:
        assert asynchronous is False
        if self.raises is not None:
            raise self.raises
        self.committed = offsets
        return [Answer(tp.topic, tp.partition, self.errors.get(tp.partition)) for tp in offsets]


def test_a_refused_partition_is_an_error_naming_it() -> None:
    consumer: Any = FakeConsumer({1: KafkaError(KafkaError.REBALANCE_IN_PROGRESS)})
    with pytest.raises(CommitError, match=r"t\[1\]"):
        commit(consumer, {("t", 0): 5, ("t", 1): 9})
    assert [(tp.partition, tp.offset) for tp in consumer.committed] == [(0, 5), (1, 9)]


def test_a_clean_commit_and_a_refused_request() -> None:
    commit(FakeConsumer({}), {("t", 0): 5})  # type: ignore[arg-type]
    commit(FakeConsumer({}, raises=KafkaException(KafkaError(KafkaError._NO_OFFSET))), {})  # type: ignore[arg-type]
    with pytest.raises(CommitError):
        commit(FakeConsumer({}, raises=KafkaException(KafkaError(KafkaError._NO_OFFSET))),  # type: ignore[arg-type]
               {("t", 0): 1})


def test_one_configuration_with_the_prefixed_group() -> None:
    config = consumer_config(SETTINGS, "aerostic-router", fetch_wait_max_ms=5)
    assert config["group.id"] == "blue.aerostic-router"
    assert config["enable.auto.commit"] is False
    assert config["fetch.wait.max.ms"] == 5
    assert config["max.poll.interval.ms"] == SETTINGS.kafka_max_poll_interval_ms
    assert config["session.timeout.ms"] == SETTINGS.kafka_session_timeout_ms


def test_groups_off_the_reply_path_wait_longer_at_the_broker() -> None:
    settings = CoreSettings(environment="test", kafka_fetch_wait_ms=20, kafka_background_fetch_wait_ms=300)
    for group in (ROUTER_GROUP, CONVERSATIONS_GROUP, AI_GROUP, DISPATCHER_GROUP):
        assert group not in BACKGROUND_GROUPS
        assert consumer_config(settings, group)["fetch.wait.max.ms"] == 20
    for group in (PROJECTOR_GROUP, CAMPAIGN_EXPANDER_GROUP, CAMPAIGN_RECIPIENTS_GROUP, CAMPAIGN_FUNNEL_GROUP,
                  DELIVERER_GROUP):
        assert consumer_config(settings, group)["fetch.wait.max.ms"] == 300
    assert consumer_config(settings, PROJECTOR_GROUP, fetch_wait_max_ms=7)["fetch.wait.max.ms"] == 7


def test_last_offsets_are_one_past_the_highest_of_each_partition() -> None:
    batch = [FakeMessage("a", 0, 7), FakeMessage("a", 0, 3), FakeMessage("a", 1, 0), FakeMessage("b", 0, 2),
             FakeMessage("b", 0, 99, error=KafkaError(KafkaError._PARTITION_EOF))]
    assert last_offsets(batch) == {("a", 0): 8, ("a", 1): 1, ("b", 0): 3}


def assignments(group: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("aerostic_consumer_assignments_total", {"group": group})


def test_a_group_shows_its_assignments_at_zero_from_its_consumers_build() -> None:
    assert assignments("unit-built-group") is None
    consumer = build_consumer(SETTINGS, "unit-built-group")
    consumer.close()
    assert assignments("unit-built-group") == 0.0  # before any subscription: a harness sees it is yet to join


class Subscribing:
    """Records what ``subscribe`` hands the consumer."""

    def __init__(self) -> None:
        self.topics: list[str] = []
        self.callbacks: dict[str, Any] = {}

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.topics, self.callbacks = topics, callbacks


def test_subscribe_counts_each_assignment_before_the_groups_own_callback() -> None:
    consumer = Subscribing()
    seen: list[tuple[str, float | None, list[TopicPartition]]] = []
    partitions = [TopicPartition("blue.t", 0)]

    def on_assign(_consumer: Any, given: list[TopicPartition]) -> None:
        seen.append(("assign", assignments("unit-subscribed"), given))

    def on_revoke(_consumer: Any, given: list[TopicPartition]) -> None:
        seen.append(("revoke", assignments("unit-subscribed"), given))

    subscribe(consumer, "unit-subscribed", ["blue.t"], on_assign=on_assign, on_revoke=on_revoke)  # type: ignore[arg-type]
    assert consumer.topics == ["blue.t"] and set(consumer.callbacks) == {"on_assign", "on_revoke"}
    consumer.callbacks["on_assign"](consumer, partitions)
    consumer.callbacks["on_revoke"](consumer, partitions)
    consumer.callbacks["on_assign"](consumer, partitions)
    assert seen == [("assign", 1.0, partitions), ("revoke", 1.0, partitions), ("assign", 2.0, partitions)]


def test_subscribe_without_callbacks_still_counts_and_passes_no_empty_callback() -> None:
    consumer = Subscribing()
    subscribe(consumer, "unit-counted-only", ["blue.t"])  # type: ignore[arg-type]
    assert set(consumer.callbacks) == {"on_assign"}  # confluent-kafka refuses on_revoke=None
    consumer.callbacks["on_assign"](consumer, [])
    assert assignments("unit-counted-only") == 1.0
