"""Entry point of the stream worker: the router, the conversation processor and the campaign processors."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import create_async_engine

from broker.producer import AsyncProducer
from broker.runtime import Processor, StreamWorker
from broker.shutdown import stop_on_signals
from broker.tasks import keep_running
from config.settings import StreamsSettings
from db.redis_client import connect_redis
from schemas.catalogue import TENANTS_DIRECTORY
from streams.campaign_expander import CampaignExpander
from streams.campaign_funnel import CampaignFunnel
from streams.campaign_recipients import CampaignRecipients
from streams.campaign_scheduler import CampaignScheduler
from streams.conversations import ConversationProcessor
from streams.directory import TenantDirectory
from streams.identities import IdentityBook, PostgresIdentities
from streams.media_intake import MediaIntake
from streams.router import Router

log = logging.getLogger(__name__)


def run(settings: StreamsSettings | None = None) -> None:
    """Load the tenant directory, then run the router and the conversation processor until stopped."""
    settings = settings or StreamsSettings()
    directory = TenantDirectory(settings, TENANTS_DIRECTORY.full_name(settings.topic_prefix))
    directory.start()
    log.info("tenant directory loaded")
    try:
        asyncio.run(_serve(settings, directory))
    finally:
        directory.stop()


async def _serve(settings: StreamsSettings, directory: TenantDirectory) -> None:
    redis = connect_redis(settings.redis_url.get_secret_value())
    engine = create_async_engine(settings.database_url.get_secret_value(), pool_size=5)
    producer = AsyncProducer(settings.kafka_bootstrap_servers, linger_ms=2)
    await producer.start()
    processors: list[Processor] = [
        Router(directory, redis, IdentityBook(redis, PostgresIdentities(engine)), prefix=settings.topic_prefix,
               sync_timeout=settings.directory_sync_timeout_s),
        ConversationProcessor(redis, engine, prefix=settings.topic_prefix),
        CampaignExpander(engine, redis, prefix=settings.topic_prefix),
        CampaignRecipients(engine, prefix=settings.topic_prefix),
        CampaignFunnel(engine, redis, prefix=settings.topic_prefix),
        MediaIntake(prefix=settings.topic_prefix),
    ]
    workers = [StreamWorker(p, producer, settings) for p in processors]
    def stop() -> None:
        for worker in workers:
            worker.stop()

    stop_on_signals(stop)
    log.info("stream workers running: %s", ", ".join(p.group_id for p in processors))
    scheduler = keep_running("campaign scheduler", CampaignScheduler(
        engine, redis, producer, prefix=settings.topic_prefix, interval_s=settings.campaign_tick_s,
        tier_recheck_s=settings.campaign_tier_recheck_s).run)
    try:
        await asyncio.gather(*(w.run() for w in workers))
    finally:
        scheduler.cancel()
        await asyncio.gather(scheduler, return_exceptions=True)
        await producer.stop()
        await redis.aclose()
        await engine.dispose()
