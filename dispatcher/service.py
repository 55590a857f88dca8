"""The dispatcher process: consume the outbound lanes, send through ``Sender``, publish, commit.

One confluent-kafka consumer reads ``outbound.interactive``, ``outbound.bulk`` and
``outbound.retry`` (range assignment, so one conversation's partitions of all three land on
the same dispatcher), and ``wa.account.events`` to hold the sends of a WABA Meta disconnected;
or, with ``lanes`` set, a process reads the interactive lane alone and others the rest (``LANE_TOPICS``).
A second consumer (``SignupWorker``) runs Embedded Signup's exchange for ``signup.requests``, a third
(``TemplateWorker``) the template registry's sync, creations and deletions for ``templates.requests``, a fourth
(``MediaWorker``) inbound media for ``media.requests``.
Bulk partitions are paused while interactive requests wait or the bulk buffer is full, so a
campaign backlog never delays a reply. Workers take requests from the
``Scheduler`` (order within a conversation, interactive first). A result or retry is
published and acknowledged before its offset counts as finished; only finished offsets are
committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import uvloop
from confluent_kafka import Consumer, Message, TopicPartition
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import create_async_engine

from broker.batches import next_batch
from broker.consumer import CommitError, build_consumer, subscribe
from broker.metrics import GroupMetrics, slices
from broker.offsets import OffsetTracker, commit_finished
from broker.producer import AsyncProducer, DeliveryError
from broker.runtime import set_aside
from broker.shutdown import stop_on_signals
from broker.tasks import keep_running
from config.logs import log_context
from config.settings import DispatcherSettings
from db.redis_client import connect_redis
from dispatcher import metrics
from dispatcher.accounts import Accounts
from dispatcher.campaigns import CampaignGate
from dispatcher.coalesce import ScriptBatcher, urgent
from dispatcher.graph import GraphClient
from dispatcher.lanes import Scheduler, Work
from dispatcher.media import MediaUploads, MediaWorker
from dispatcher.onboarding import Onboarding
from dispatcher.sender import Sender, Verdict
from dispatcher.signup_worker import SignupWorker
from dispatcher.templates import TemplateWorker
from mediastore import open_store
from schemas.catalogue import (
    ACCOUNT_EVENTS,
    CAMPAIGNS_COMMANDS,
    DISPATCHER_GROUP,
    OUTBOUND_BULK,
    OUTBOUND_INTERACTIVE,
    OUTBOUND_RESULTS,
    OUTBOUND_RETRY,
    STATUSES,
)
from schemas.events import AccountEvent
from schemas.outbound import OutboundRequest, local_failure_status
from vault.cipher import Vault

log = logging.getLogger(__name__)

INTERACTIVE_SHARE = 8  # one worker in 8 is kept from bulk sends: a reply never waits for a free worker
BULK_HOLD_S = 0.5  # a number's requests of a lane held by workers at once: half a second of its rate (``_number_cap``)
BULK_HOLD_MIN = 8
DEFAULT_RATE = 80.0  # Meta's throughput of a number until it is raised
BULK_HELD_MAX = 5  # bulk requests in memory, those waiting for their number's room too: at most 5 times bulk_buffer
# A fetched batch is accepted this many records at a time, the event loop let run between: 500 at once held it
# 9-10 ms (measured during a campaign, 37 batches of 500), and the pacer makes up at most 25 ms of a number's rate
# (``pacing``): such a hold with a collection or a burst of answers on top was a gap of 21-36 ms between two of a
# campaign's sends, lost for good.
ACCEPT_CHUNK = 64
# What a process reads by its ``lanes`` setting. Split, every topic still has readers in the one consumer group: the
# interactive lane's processes and the others'. A conversation's reply and campaign message may then be sent at once
# by two processes (its pair limit is shared in Redis); each lane keeps its own order.
LANE_TOPICS = {"all": (OUTBOUND_INTERACTIVE, OUTBOUND_BULK, OUTBOUND_RETRY, ACCOUNT_EVENTS),
               "interactive": (OUTBOUND_INTERACTIVE,),
               "bulk": (OUTBOUND_BULK, OUTBOUND_RETRY, ACCOUNT_EVENTS)}


class Dispatcher:
    """Consumer, scheduler, workers and committer of one dispatcher process."""

    def __init__(self, settings: DispatcherSettings, vault: Vault) -> None:
        self.settings = settings
        prefix = settings.topic_prefix
        self.topics = {spec.name: spec.full_name(prefix) for spec in (OUTBOUND_INTERACTIVE, OUTBOUND_BULK,
                                                                      OUTBOUND_RETRY, OUTBOUND_RESULTS, STATUSES,
                                                                      ACCOUNT_EVENTS, CAMPAIGNS_COMMANDS)}
        self.bulk_topic = self.topics[OUTBOUND_BULK.name]
        self.consumer = build_consumer(settings, DISPATCHER_GROUP)
        self.producer = AsyncProducer(settings.kafka_bootstrap_servers, linger_ms=2)
        # Bulk outcomes wait longer to be published together: fewer produce requests for the broker and this
        # process. A conversation's next request waits for its outcome, and both of its producers keep that order.
        self.bulk_producer = AsyncProducer(settings.kafka_bootstrap_servers, linger_ms=settings.bulk_linger_ms)
        self.redis = connect_redis(settings.redis_url.get_secret_value(), max_connections=settings.concurrency + 16)
        self.engine = create_async_engine(settings.database_url.get_secret_value(), pool_size=4)
        self.graph = GraphClient(settings.graph_base_url, settings.graph_version,
                                 read_timeout=settings.request_timeout_s, max_connections=settings.http_connections)
        self.store = open_store(settings)
        accounts = Accounts(self.engine, vault, ttl_s=settings.account_cache_s)
        self.scripts = ScriptBatcher(self.redis, linger_s=settings.redis_linger_ms / 1000)
        self.sender = Sender(settings, accounts=accounts, graph=self.graph, scripts=self.scripts,
                             campaigns=CampaignGate(self.redis, self.engine, self.scripts),
                             media=MediaUploads(self.engine, self.store, self.redis, self.graph))
        # Signups, templates and media, each with a consumer of its own: built only where they run, not in a
        # replies-only process, which keeps its loop for the replies.
        self.side_workers: list[SignupWorker | TemplateWorker | MediaWorker] = []
        if settings.lanes != "interactive":
            onboarding = Onboarding(self.graph, self.engine, vault, app_id=settings.meta_app_id,
                                    app_secret=settings.meta_app_secret.get_secret_value(),
                                    retry_base_s=settings.retry_base_s)
            self.side_workers = [
                SignupWorker(settings, onboarding, self.redis, self.producer),
                TemplateWorker(settings, self.graph, self.engine, vault, self.redis, self.producer,
                               retry_base_s=settings.retry_base_s),
                MediaWorker(settings, self.graph, accounts, self.store, self.producer, self.engine)]
        self.scheduler = Scheduler(max_bulk=max(1, settings.concurrency - settings.concurrency // INTERACTIVE_SHARE),
                                   number_cap=self._number_cap)
        accounts.on_rate = self.scheduler.widened  # a number's rate read: its bound follows at once
        self.offsets = OffsetTracker()
        self.group_metrics = GroupMetrics(DISPATCHER_GROUP)
        self._bulk_paused = False
        self._pause_reason: str | None = None  # why bulk is paused (``metrics.BULK_PAUSED``), since when
        self._paused_since = 0.0
        self._assigned: set[tuple[str, int]] = set()
        self._revoked: list[set[tuple[str, int]]] = []
        self._stopping = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    def _number_cap(self, phone_number_id: str) -> int:
        """How many of a number's requests of each lane the workers may hold at once: what its rate sends in
        ``BULK_HOLD_S`` (Meta answers in 0.1-0.35 s), at least ``BULK_HOLD_MIN``; a number not read yet counts at Meta's
        default rate. (A bound that followed Graph's answer time, 0.1 s more, held about 100 of a 1,000 msg/s number's
        requests on loopback: always at its bound, the number's backlog counted as waiting for room, so the dispatcher
        read 10,000 of its requests ahead instead of 2,000, and the next dispatcher replayed 6,564 of them.)"""
        rate = self.sender.accounts.rate(phone_number_id) or DEFAULT_RATE
        return max(BULK_HOLD_MIN, int(rate * BULK_HOLD_S))

    async def run(self) -> None:
        await self.producer.start()
        await self.bulk_producer.start()
        lanes = [self.topics[spec.name] for spec in LANE_TOPICS[self.settings.lanes]]
        subscribe(self.consumer, DISPATCHER_GROUP, lanes, on_assign=self._on_assign, on_revoke=self._on_revoke)
        workers = [asyncio.create_task(self._worker()) for _ in range(self.settings.concurrency)]
        committer = keep_running("dispatcher offset committer", self._commit_forever)
        reporter = keep_running("dispatcher reporter", self._report_forever)
        side = [asyncio.create_task(worker.run(self._stopping)) for worker in self.side_workers]
        try:
            await self._consume_forever()
        finally:
            self._stopping.set()
            for task in (*workers, committer, reporter):
                task.cancel()
            await asyncio.gather(*workers, committer, reporter, *side, return_exceptions=True)
            await self._commit()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.consumer.close)
            await self.producer.stop()
            await self.bulk_producer.stop()
            await self.graph.aclose()
            await self.store.aclose()
            await self.scripts.aclose()
            await self.redis.aclose()
            await self.engine.dispose()

    # --- consuming -------------------------------------------------------------------------

    async def _consume_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            batch = await loop.run_in_executor(None, next_batch, self.consumer, 500, 0.1)
            self._apply_revocations()
            if batch:
                self.group_metrics.started(slices(batch), time.time())
            await self._accept_all(batch)
            await self._flow_control()

    async def _accept_all(self, batch: list[Message]) -> None:
        """Accept a fetched batch ``ACCEPT_CHUNK`` records at a time, letting the workers and the pacer run between."""
        for at in range(0, len(batch), ACCEPT_CHUNK):
            if at:
                await asyncio.sleep(0)
            for msg in batch[at:at + ACCEPT_CHUNK]:
                self._accept(msg)

    def _accept(self, msg: Message) -> None:
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        self.offsets.received(topic, partition, offset)
        if topic == self.topics[ACCOUNT_EVENTS.name]:
            task = asyncio.create_task(self._account_event(msg))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        try:
            request = OutboundRequest.decode(msg.value() or b"")
        except ValidationError as exc:
            task = asyncio.create_task(self._set_aside(msg, exc))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        delay = max(0.0, request.not_before - time.time())
        self.scheduler.add(Work(request, topic, partition, offset, not_before=time.monotonic() + delay))

    async def _account_event(self, msg: Message) -> None:
        """Meta says the WABA is gone (partner removed, app uninstalled…): hold its sends until reconnected."""
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        try:
            event = AccountEvent.decode(msg.value() or b"")
            if await self.sender.accounts.apply(event):
                log.warning("WABA %s is disconnected (%s); its sends are held", event.waba_id, event.event)
        except ValidationError as exc:
            await self._set_aside(msg, exc)
            return
        except Exception:
            log.exception("account event %s[%s]@%s not applied; it is read again after a restart", topic,
                          partition, offset)
            return
        self.offsets.finished(topic, partition, offset)

    async def _set_aside(self, msg: Message, error: BaseException) -> None:
        """A record the dispatcher cannot read goes to its dead-letter topic; then its offset may pass."""
        await set_aside(self.producer, DISPATCHER_GROUP, msg, error, self.settings.topic_prefix)
        self.offsets.finished(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)

    async def _flow_control(self) -> None:
        """Pause bulk while an interactive request waits for a worker or the bulk buffer is full; resume otherwise.

        Decided once the workers woken for the batch's requests have taken them: an interactive request an idle
        worker is about to take waits for nothing. Decided before that, every batch holding a reply paused bulk, and
        with replies arriving faster than a consume's wait every batch held one: the bulk partitions stayed paused
        and a number answering 45 customers a second sent none of its campaign (``bench dispatch``).
        """
        await asyncio.sleep(0)
        reason = "replies" if self.scheduler.interactive_waiting else "buffer" if self._bulk_full() else None
        now = time.monotonic()
        if self._pause_reason is not None:
            metrics.BULK_PAUSED.labels(self._pause_reason).inc(now - self._paused_since)
        self._pause_reason, self._paused_since = reason, now
        pause = reason is not None
        if pause == self._bulk_paused:
            return
        partitions = [TopicPartition(t, p) for t, p in self._assigned if t == self.bulk_topic]
        if partitions:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.consumer.pause if pause else self.consumer.resume, partitions)
        self._bulk_paused = pause

    def _bulk_full(self) -> bool:
        """The bulk requests in memory that could go now reach ``bulk_buffer``, or all of them ``BULK_HELD_MAX`` times
        that. Those of a number at its bound or held go at its rate or once its account can send, whatever else is read:
        counted, a slow number's backlog, or a held one's, filled the buffer, and another tenant's requests behind it in
        a partition were not read."""
        queued = self.scheduler.queued_bulk
        buffer = self.settings.bulk_buffer
        return queued >= buffer * BULK_HELD_MAX or queued - self.scheduler.bulk_waiting_for_room >= buffer

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = self._assigned | {(tp.topic, tp.partition) for tp in partitions}
        self._bulk_paused = False

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs on the polling thread: rebind (never mutate) the set the event loop may be iterating.
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned = self._assigned - revoked
        self._revoked.append(revoked)

    def _apply_revocations(self) -> None:
        while self._revoked:
            revoked = self._revoked.pop()
            dropped = self.scheduler.drop_partitions(revoked)
            self.offsets.forget(revoked)
            self.group_metrics.forget(sorted(revoked))
            log.info("partitions revoked: %d queued requests left to their new owner", dropped)

    # --- working ---------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            work = await self.scheduler.next()
            request = work.request
            with log_context(tenant_id=request.tenant_id, conversation_key=request.conversation_key,
                             message_id=request.message_id):
                try:
                    with urgent() if request.lane == "interactive" else contextlib.nullcontext():
                        verdict = await self.sender.process(request)  # a reply's Redis calls skip bulk's pipelines
                    await self._settle(work, verdict)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("send %s failed unexpectedly; retrying in 1 s", request.message_id)
                    self.scheduler.again(work, 1.0)

    async def _settle(self, work: Work, verdict: Verdict) -> None:
        if verdict.later_s is not None:
            if verdict.account_held:
                self.scheduler.hold_number(work, verdict.later_s)
            else:
                self.scheduler.again(work, verdict.later_s)
            return
        key = work.request.conversation_key.encode()
        producer = self.producer if work.interactive else self.bulk_producer
        try:
            if verdict.held is not None:  # the campaign records why its recipient waits
                await producer.send(self.topics[CAMPAIGNS_COMMANDS.name], verdict.held.encode(),
                                    verdict.held.campaign_id.encode())
            elif verdict.retry is not None:
                self.scheduler.block(work)  # before publishing: the retry may be consumed at once
                await producer.send(self.topics[OUTBOUND_RETRY.name], verdict.retry.encode(), key)
                metrics.retried(work.request.lane)
            elif verdict.result is not None:
                await producer.send(self.topics[OUTBOUND_RESULTS.name], verdict.result.encode(), key)
                if verdict.result.local:
                    status = local_failure_status(verdict.result)
                    await producer.send(self.topics[STATUSES.name], status.encode(), key)
                metrics.sent(work.request.lane, verdict.result.outcome, verdict.result.error_code)
        except DeliveryError as exc:
            self.scheduler.unblock(work)
            log.error("could not publish the outcome of %s (%s); it is re-evaluated", work.request.message_id, exc)
            self.scheduler.again(work, 1.0)
            return
        self.offsets.finished(work.topic, work.partition, work.offset)
        self.scheduler.done(work)

    # --- committing and reporting ----------------------------------------------------------

    async def _commit_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval_s)
            await self._commit()

    async def _commit(self) -> None:
        offsets = {tp: o for tp, o in self.offsets.committable().items() if tp in self._assigned}
        if not offsets:
            return
        try:
            await commit_finished(self.consumer, self.offsets, offsets, self.group_metrics)
        except CommitError as exc:
            log.warning("offset commit failed (the requests will be re-evaluated, not re-sent): %s", exc)

    async def _report_forever(self) -> None:
        while True:
            await asyncio.sleep(10)
            log.info("dispatcher: %s; queued interactive=%d bulk=%d open offsets=%d", dict(self.sender.counts),
                     self.scheduler.queued_interactive, self.scheduler.queued_bulk, self.offsets.open_count)


def run(settings: DispatcherSettings | None = None) -> None:
    """Run the dispatcher until SIGINT/SIGTERM."""
    settings = settings or DispatcherSettings()
    vault = Vault.from_spec(settings.vault_keys.get_secret_value())

    async def main() -> None:
        dispatcher = Dispatcher(settings, vault)
        stop_on_signals(dispatcher.stop)
        with contextlib.suppress(asyncio.CancelledError):
            await dispatcher.run()

    uvloop.run(main())  # the cheaper event loop the ingress and the simulator run on too

