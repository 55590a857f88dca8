"""The deliverer process: the intake (a consumer group on the stream runtime), the scheduler that sends, the
redelivery worker and the log's pruning, in one event loop; stops within seconds of SIGTERM (what was in flight is
leased and tried again by the next start)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvloop
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.producer import AsyncProducer
from broker.runtime import StreamWorker
from broker.shutdown import stop_on_signals
from broker.tasks import keep_running
from config.settings import DelivererSettings
from deliverer.intake import SETTLE_S, Intake
from deliverer.replay import Replayer
from deliverer.scheduler import Scheduler

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0
PRUNE_BATCH = 10_000
PRUNE = (
    text("DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE state <> 'pending' "
         "AND finished_at < now() - make_interval(days => :days) LIMIT :batch)"),
    text("DELETE FROM webhook_events WHERE event_id IN (SELECT e.event_id FROM webhook_events e "
         "WHERE e.recorded_at < now() - make_interval(days => :days) AND NOT EXISTS "
         "(SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.event_id) LIMIT :batch)"),
    text("DELETE FROM webhook_redeliveries WHERE id IN (SELECT id FROM webhook_redeliveries WHERE state <> "
         "'requested' AND done_at < now() - make_interval(days => :days) LIMIT :batch)"),
)


async def prune(engine: AsyncEngine, days: int) -> None:
    """Forget finished deliveries, their events and done redelivery requests older than ``days``."""
    async with engine.begin() as conn:
        for statement in PRUNE:
            await conn.execute(statement, {"days": days, "batch": PRUNE_BATCH})


def run(settings: DelivererSettings | None = None) -> None:
    """Run the deliverer until SIGINT/SIGTERM."""
    settings = settings or DelivererSettings()

    async def main() -> None:
        engine = create_async_engine(settings.database_url.get_secret_value(), pool_size=5, max_overflow=10)
        producer = AsyncProducer(settings.kafka_bootstrap_servers)  # only for dead letters
        await producer.start()
        wake = asyncio.Event()
        scheduler = Scheduler(engine, settings, wake)
        worker = StreamWorker(Intake(engine, prefix=settings.topic_prefix, wake=wake), producer, settings,
                              settle_s=SETTLE_S)

        async def pruning() -> None:
            while True:
                await prune(engine, settings.webhook_log_retention_days)
                await asyncio.sleep(PRUNE_EVERY_S)

        loops = [keep_running("webhook scheduler", scheduler.run),
                 keep_running("webhook redelivery", Replayer(engine, settings, wake).run),
                 keep_running("webhook log pruning", pruning)]
        stop_on_signals(worker.stop)
        try:
            await worker.run()
        finally:
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await scheduler.close()
            await producer.stop()
            await engine.dispose()

    uvloop.run(main())  # the cheaper event loop every long-running process runs on
