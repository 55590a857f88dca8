"""Entry points of the stream workers: ``run`` (router and conversation processor) and
``run_campaigns`` (the campaign processors and scheduler, a process of their own so that a campaign's
backlog never delays an inbox reply). Both serve their processors through ``_serve``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import uvloop
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.producer import AsyncProducer
from broker.runtime import Processor, StreamWorker
from broker.shutdown import stop_on_signals
from broker.tasks import keep_running
from config.settings import CampaignsSettings, CoreSettings, StreamsSettings
from db.raw_pool import close_raw_pool
from db.redis_client import connect_redis
from db.redis_wire import close_redis_wire
from schemas.catalogue import TENANTS_DIRECTORY
from streams.campaign_expander import CampaignExpander
from streams.campaign_funnel import CampaignFunnel
from streams.campaign_recipients import CampaignRecipients
from streams.campaign_scheduler import CampaignScheduler
from streams.conversations import ConversationProcessor
from streams.directory import TenantDirectory
from streams.identities import IdentityBook, PostgresIdentities
from streams.router import Router

log = logging.getLogger(__name__)

# The router's and the conversation processor's Redis commands carry no timeout of their own: redis-py 8 spends a
# task and a timer on each (about 40 of a GET's 105 µs of CPU, 55 of a pipeline's 195). Their per-batch commands
# go on the client's multiplexed wire (``db.redis_wire``, dropped after 10 s without a reply), the rarer ones (the
# hand-off queues' scripts) on the client itself. All of them are made by a batch's ``process`` and ``saved``, which
# the runtime gives up on after this long and retries (``StreamWorker(deadline_s=…)``), as a command's own 5 s
# timeout did. The campaigns' process keeps the per-command timeout: its scheduler loop runs outside any batch.
BATCH_DEADLINE_S = 10.0


@dataclass(frozen=True)
class Resources:
    """What a process's processors share: one Redis client, one PostgreSQL pool, one producer."""

    redis: Redis
    engine: AsyncEngine
    producer: AsyncProducer


Build = Callable[[Resources], list[Processor]]
Loops = Callable[[Resources], dict[str, Callable[[], Awaitable[None]]]]


def run(settings: StreamsSettings | None = None) -> None:
    """Load the tenant directory, then run the router and the conversation processor until stopped."""
    settings = settings or StreamsSettings()
    directory = TenantDirectory(settings, TENANTS_DIRECTORY.full_name(settings.topic_prefix))
    directory.start()
    log.info("tenant directory loaded")
    prefix = settings.topic_prefix

    def build(r: Resources) -> list[Processor]:
        return [Router(directory, r.redis, IdentityBook(r.redis, PostgresIdentities(r.engine)), prefix=prefix,
                       sync_timeout=settings.directory_sync_timeout_s),
                ConversationProcessor(r.redis, r.engine, prefix=prefix)]

    try:  # uvloop: the cheaper event loop every long-running process runs on
        uvloop.run(_serve(settings, build, deadline_s=BATCH_DEADLINE_S))
    finally:
        directory.stop()


def run_campaigns(settings: CampaignsSettings | None = None) -> None:
    """Run the campaign expander, recipients and funnel processors and the campaign scheduler until stopped."""
    settings = settings or CampaignsSettings()
    prefix = settings.topic_prefix

    schedulers: list[CampaignScheduler] = []

    def build(r: Resources) -> list[Processor]:
        scheduler = CampaignScheduler(r.engine, r.redis, r.producer, prefix=prefix,
                                      interval_s=settings.campaign_tick_s,
                                      tier_recheck_s=settings.campaign_tier_recheck_s)
        schedulers.append(scheduler)
        return [CampaignExpander(r.engine, r.redis, prefix=prefix, lead_s=settings.campaign_lead_s,
                                 on_held=scheduler.expect),
                CampaignRecipients(r.engine, prefix=prefix),
                CampaignFunnel(r.engine, r.redis, prefix=prefix)]

    def loops(r: Resources) -> dict[str, Callable[[], Awaitable[None]]]:
        return {"campaign scheduler": schedulers[-1].run}  # the one the expander tells of its held pages

    uvloop.run(_serve(settings, build, loops))


async def _serve(settings: CoreSettings, build: Build, loops: Loops | None = None, *,
                 deadline_s: float | None = None) -> None:
    """Run ``build``'s processors (and ``loops``, restarted when they fail) until SIGTERM/SIGINT; with
    ``deadline_s``, Redis commands without a timeout of their own, each batch's steps within that deadline."""
    untimed = {"socket_timeout": None} if deadline_s is not None else {}
    resources = Resources(connect_redis(settings.redis_url.get_secret_value(), **untimed),
                          create_async_engine(settings.database_url.get_secret_value(), pool_size=5),
                          AsyncProducer(settings.kafka_bootstrap_servers, linger_ms=2))
    await resources.producer.start()
    processors = build(resources)
    workers = [StreamWorker(p, resources.producer, settings, deadline_s=deadline_s) for p in processors]

    def stop() -> None:
        for worker in workers:
            worker.stop()

    stop_on_signals(stop)
    log.info("stream workers running: %s", ", ".join(p.group_id for p in processors))
    tasks = [keep_running(name, loop) for name, loop in (loops(resources) if loops else {}).items()]
    try:
        await asyncio.gather(*(w.run() for w in workers))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await resources.producer.stop()
        await close_redis_wire(resources.redis)
        await resources.redis.aclose()
        await close_raw_pool(resources.engine)
        await resources.engine.dispose()
