"""How every Aerostic process builds a Kafka consumer and commits its offsets.

``consumer_config`` is the one consumer configuration: no auto-commit (offsets are committed
only after the effects they stand for are durable), earliest offset for a new group, the range
assignor, the settings' session timeout and fetch wait. ``reader_config`` is the same for readers
without a group (the tenant directory, replays), which assign partitions themselves.

The fetch wait is the broker's idle cost and a hop's latency: the embedded broker answers a waiting fetch
only when its wait runs out (new records do not wake it), so each idle consumer costs it CPU at 1/wait fetches
per second, and a record that arrives while a fetch waits is read up to one wait later. The groups on a
customer's reply path fetch with ``kafka_fetch_wait_ms``; ``BACKGROUND_GROUPS``, whose results nobody waits
for within a second (the projector, media, signup and template lanes, the campaign funnel, the tenants'
webhooks), with ``kafka_background_fetch_wait_ms``.
``subscribe`` subscribes a group's consumer and counts each partition assignment it receives
(``aerostic_consumer_assignments_total{group}``), the series a harness reads to stop a process only between
rebalances (``LocalStack.stop_in_turn``).
``commit`` commits synchronously and checks every partition's own error: a commit can succeed
as a request and still be refused for some partitions; ``refused`` reads the answer of an asynchronous
commit (``build_consumer(..., on_commit=...)``) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from broker.metrics import ASSIGNMENTS
from config.settings import CoreSettings
from schemas.catalogue import (
    CAMPAIGN_EXPANDER_GROUP,
    CAMPAIGN_FUNNEL_GROUP,
    CAMPAIGN_RECIPIENTS_GROUP,
    DELIVERER_GROUP,
    MEDIA_GROUP,
    PROJECTOR_GROUP,
    SIGNUP_GROUP,
    TEMPLATES_GROUP,
)

log = logging.getLogger(__name__)

# How often a group commits what it handled (the stream workers' runtime, the AI worker): a commit costs the embedded
# broker about as much as a produced record (0.3-0.5 ms of CPU, measured alone). At 0.5 s instead of 0.05, a question
# cost the whole stack 24.7-25.1 ms against 25.5-26.0 (bench e2e at 40/s, alternated). A crash re-runs at most this
# much more (every consumer downstream is idempotent). A stop commits what was handled at once, and so does the
# runtime's revoke on a rebalance.
COMMIT_EVERY_S = 0.5

# Off a customer's reply path: a campaign's first sends may start a fraction of a second later, and each of these
# idle consumers costs the embedded broker ~8 ms of CPU a second instead of ~37 (a consumer alone, 250 ms against 20).
# A tenant's webhook (the deliverer) may go a quarter of a second later: it is no reply to a customer.
BACKGROUND_GROUPS = frozenset({PROJECTOR_GROUP, MEDIA_GROUP, SIGNUP_GROUP, TEMPLATES_GROUP,
                               CAMPAIGN_EXPANDER_GROUP, CAMPAIGN_RECIPIENTS_GROUP, CAMPAIGN_FUNNEL_GROUP,
                               DELIVERER_GROUP})


def consumer_config(settings: CoreSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """The consumer configuration of a group; ``fetch_wait_max_ms=5`` overrides ``fetch.wait.max.ms``."""
    wait = (settings.kafka_background_fetch_wait_ms if group_id in BACKGROUND_GROUPS
            else settings.kafka_fetch_wait_ms)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": settings.topic_prefix + group_id,  # deployments sharing a cluster share nothing
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": settings.kafka_max_poll_interval_ms,
        "fetch.wait.max.ms": wait,
        "reconnect.backoff.max.ms": 2000,
        "log_level": 3,
    }
    config.update({name.replace("_", "."): value for name, value in overrides.items()})
    return config


def reader_config(settings: CoreSettings, **overrides: Any) -> dict[str, Any]:
    """For a reader that assigns partitions itself and never commits (its group id is never used)."""
    return consumer_config(settings, "aerostic-reader-unused", **overrides)


def build_consumer(settings: CoreSettings, group_id: str, *,
                   on_commit: Callable[[KafkaError | None, list[TopicPartition]], None] | None = None,
                   **overrides: Any) -> Consumer:
    """A group's consumer; ``on_commit`` gets each asynchronous commit's answer, from the poll that serves it.

    The group's assignment count shows 0 from here on, so a harness waiting for each group of a process to be
    joined also sees those it has yet to join (every consumer is built before its process subscribes any)."""
    config = consumer_config(settings, group_id, **overrides)
    if on_commit is not None:
        config["on_commit"] = on_commit
    ASSIGNMENTS.labels(group_id)
    return Consumer(config)


Rebalanced = Callable[[Consumer, list[TopicPartition]], None]


def subscribe(consumer: Consumer, group_id: str, topics: list[str], *, on_assign: Rebalanced | None = None,
              on_revoke: Rebalanced | None = None, on_lost: Rebalanced | None = None) -> None:
    """Subscribe ``group_id``'s consumer to ``topics``; each assignment is counted before ``on_assign`` runs."""
    counter = ASSIGNMENTS.labels(group_id)

    def assigned(member: Consumer, partitions: list[TopicPartition]) -> None:
        counter.inc()
        if on_assign is not None:
            on_assign(member, partitions)

    callbacks = {name: callback for name, callback in (("on_revoke", on_revoke), ("on_lost", on_lost))
                 if callback is not None}
    consumer.subscribe(topics, on_assign=assigned, **callbacks)


class CommitError(Exception):
    """The broker refused the commit of some partitions (e.g. they were revoked meanwhile)."""


def commit(consumer: Consumer, offsets: dict[tuple[str, int], int]) -> None:
    """Commit ``{(topic, partition): next offset}`` synchronously; raise ``CommitError`` naming refused partitions.

    Blocking: call it off the event loop.
    """
    if not offsets:
        return
    try:
        results = consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                  asynchronous=False)
    except KafkaException as exc:
        raise CommitError(str(exc)) from exc
    problem = refused(None, results or [])
    if problem:
        raise CommitError(problem)


def refused(error: KafkaError | None, partitions: list[TopicPartition]) -> str | None:
    """What a commit's answer refused (the whole request, or partitions each with its own error), or None."""
    problems = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in partitions if tp.error is not None]
    if error is not None:
        problems.insert(0, str(error))
    return "; ".join(problems) or None


def last_offsets(records: Any) -> dict[tuple[str, int], int]:
    """The offset to commit per partition after handling ``records`` (each one's offset + 1, highest wins)."""
    last: dict[tuple[str, int], int] = {}
    for msg in records:
        if msg.error():
            continue
        tp = (msg.topic() or "", msg.partition() or 0)
        last[tp] = max(last.get(tp, 0), (msg.offset() or 0) + 1)
    return last
