"""The Faust application, built from settings. Imports nothing else from ``streams``."""

from __future__ import annotations

from datetime import timedelta

import faust

from aerostic.settings import StreamsSettings


def create_app(settings: StreamsSettings) -> faust.App:
    return faust.App(
        settings.worker_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        store="memory://",
        datadir=settings.data_dir,
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=6,
        topic_replication_factor=1,
        topic_allow_declare=True,
        broker_session_timeout=settings.kafka_session_timeout_ms / 1000,
        broker_heartbeat_interval=1.0,
        broker_commit_every=100,
        broker_commit_interval=0.5,
        producer_acks=-1,
        stream_wait_empty=False,
        web_enabled=False,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=timedelta(minutes=5).total_seconds(),
    )
