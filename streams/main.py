"""Entry point of the stream worker: builds the app, installs the agents explicitly, runs."""

from __future__ import annotations

import logging
from pathlib import Path

import faust
from redis.asyncio import Redis

from aerostic.settings import StreamsSettings
from schemas.catalogue import TENANTS_DIRECTORY
from streams.app import create_app
from streams.conversations import ConversationProcessor
from streams.directory import TenantDirectory
from streams.router import Router

log = logging.getLogger(__name__)


def run(settings: StreamsSettings | None = None) -> None:
    """Load the tenant directory, install the router and the conversation processor, run the worker."""
    settings = settings or StreamsSettings()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    directory = TenantDirectory(settings.kafka_bootstrap_servers,
                                TENANTS_DIRECTORY.full_name(settings.topic_prefix))
    directory.start()
    log.info("tenant directory loaded")
    Router(app, directory, prefix=settings.topic_prefix,
           sync_timeout=settings.directory_sync_timeout_s).install()
    redis = Redis.from_url(settings.redis_url.get_secret_value())
    ConversationProcessor(app, redis, prefix=settings.topic_prefix).install()
    try:
        faust.Worker(app, loglevel="INFO", quiet=True).execute_from_commandline()
    finally:
        directory.stop()
