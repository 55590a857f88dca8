"""Create every topic of the catalogue (idempotent) and read topic offsets."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.catalogue import CATALOGUE

log = logging.getLogger(__name__)


def create_topics(bootstrap: str, prefix: str = "", timeout: float = 30.0, *,
                  max_partitions: int | None = None) -> list[str]:
    """Create the catalogue's topics that do not exist yet; return the names created.

    ``max_partitions`` caps each topic's partitions (the local stack's embedded broker: ``stack.launcher``)."""
    if max_partitions is not None and max_partitions < 1:
        raise ValueError("max_partitions must be at least 1")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [NewTopic(spec.full_name(prefix), min(spec.partitions, max_partitions or spec.partitions), 1,
                       config=spec.config())
              for spec in CATALOGUE if spec.full_name(prefix) not in existing]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    log.info("created %d topics", len(created))
    return created
