"""The projector process: routed topics → PostgreSQL, offsets committed after the write.

Reads ``wa.inbound``, ``wa.statuses``, ``wa.account.events``, ``conversations.events``,
``outbound.results``, the ``signup.*`` and ``templates.*`` topics, ``media.results`` and every dead-letter topic as
a ``Processor`` on the stream runtime (``broker.runtime``): each batch is written in one transaction, and the runtime
commits its offsets only after the write; a write that fails because PostgreSQL is unreachable is
retried and never skipped. A record that cannot be decoded or written goes to the projector's
dead-letter topic. Its one output: a template webhook naming a template the registry lacks asks the
dispatcher for a sync (``templates.requests``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import uvloop
from confluent_kafka import Message
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.producer import AsyncProducer
from broker.runtime import Output, StreamWorker
from broker.shutdown import stop_on_signals
from config.settings import ProjectorSettings
from projector.dead_letters import write_dead_letters
from projector.templates import SyncNeed
from projector.writer import write_events
from schemas.catalogue import (
    ACCOUNT_EVENTS,
    CONVERSATIONS_EVENTS,
    DEAD_LETTERS,
    INBOUND,
    MEDIA_RESULTS,
    OUTBOUND_RESULTS,
    PROJECTOR_GROUP,
    SIGNUP_REQUESTS,
    SIGNUP_RESULTS,
    STATUSES,
    TEMPLATES_REQUESTS,
    TEMPLATES_RESULTS,
)
from schemas.conversation import CONVERSATION_EVENT
from schemas.dead_letter import DeadLetter
from schemas.events import AccountEvent, Event, InboundMessage, StatusUpdate
from schemas.media import MediaResult
from schemas.outbound import OutboundResult
from schemas.signup import SignupRequest, SignupResult
from schemas.templates import TemplateRequest, TemplateResult

log = logging.getLogger(__name__)

# How each topic's values are read; ``conversations.events`` holds several kinds (see schemas.conversation).
DECODERS: dict[str, Callable[[bytes], Event]] = {
    INBOUND.name: InboundMessage.decode, STATUSES.name: StatusUpdate.decode, ACCOUNT_EVENTS.name: AccountEvent.decode,
    CONVERSATIONS_EVENTS.name: CONVERSATION_EVENT.validate_json, OUTBOUND_RESULTS.name: OutboundResult.decode,
    SIGNUP_REQUESTS.name: SignupRequest.decode, SIGNUP_RESULTS.name: SignupResult.decode,
    TEMPLATES_REQUESTS.name: TemplateRequest.decode, TEMPLATES_RESULTS.name: TemplateResult.decode,
    MEDIA_RESULTS.name: MediaResult.decode,
    **{spec.name: DeadLetter.decode for spec in DEAD_LETTERS.values()},
}


class Projector:
    """Decodes a batch and writes it in one transaction; publishes only registry sync requests."""

    def __init__(self, engine: AsyncEngine, *, group_id: str, prefix: str) -> None:
        self.engine = engine
        self.group_id = group_id
        self.prefix = prefix
        self.topics = [prefix + name for name in DECODERS]

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        decoded = self._decode(batch)
        letters = [e for e in decoded if isinstance(e, DeadLetter)]
        events = [e for e in decoded if not isinstance(e, DeadLetter)]
        unknown: set[SyncNeed] = set()
        if decoded:
            async with self.engine.begin() as conn:
                unknown = await write_events(conn, events)
                await write_dead_letters(conn, letters)
        return [self._sync(need) for need in sorted(unknown)]

    def _sync(self, need: SyncNeed) -> Output:
        """Ask the dispatcher to sync a registry (the dispatcher handles a request id once): for templates it lacks,
        one request per WABA and minute; for an edit, one per edit (``sync_need``)."""
        now = datetime.now(UTC)
        tenant_id, waba_id = need.tenant_id, need.waba_id
        request_id = (f"edit:{tenant_id}:{waba_id}:{need.cause}" if need.cause
                      else f"auto:{tenant_id}:{waba_id}:{int(now.timestamp()) // 60}")
        request = TemplateRequest(event_id=request_id, request_id=request_id, tenant_id=tenant_id, waba_id=waba_id,
                                  action="sync", requested_by="projector", requested_at=now)
        return Output(TEMPLATES_REQUESTS.full_name(self.prefix), waba_id.encode(), request.encode())

    async def saved(self) -> None:
        """The batch's write is its state: nothing more to save before the commit."""

    def _decode(self, batch: Sequence[Message]) -> list[Event]:
        events: list[Event] = []
        for msg in batch:
            topic = (msg.topic() or "")[len(self.prefix):]
            try:
                events.append(DECODERS[topic](msg.value() or b""))
            except (KeyError, ValidationError) as exc:  # the runtime sets the record aside as a dead letter
                raise ValueError(f"undecodable record of {msg.topic()}: {exc}") from exc
        return events


def run(settings: ProjectorSettings | None = None) -> None:
    """Run the projector until SIGINT/SIGTERM."""
    settings = settings or ProjectorSettings()

    async def main() -> None:
        engine = create_async_engine(settings.database_url.get_secret_value(), pool_size=2)
        producer = AsyncProducer(settings.kafka_bootstrap_servers)  # only for dead letters
        await producer.start()
        worker = StreamWorker(Projector(engine, group_id=PROJECTOR_GROUP, prefix=settings.topic_prefix),
                              producer, settings, batch_size=settings.batch_size, batch_wait_s=settings.batch_wait_s,
                              settle_s=settings.batch_settle_s)
        stop_on_signals(worker.stop)
        try:
            await worker.run()
        finally:
            await producer.stop()
            await engine.dispose()

    uvloop.run(main())  # the cheaper event loop every long-running process runs on
