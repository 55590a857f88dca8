"""Webhooks back to Aerostic: status updates of accepted messages and customers' messages.

Every accepted message gets a chain of statuses (sent → delivered → read, or one ``failed``) that
is posted one link at a time: the next status is queued only once the previous one was answered
(or given up on), so without reordering they always arrive in order, even across retries.

One scheduler task pops due items from a time-ordered heap, groups them into batches and hands
them to a fixed pool of poster tasks over a bounded queue; the pool shares one ``poster.StreamPoster``
(keep-alive connections; httpx cost more CPU per POST than the rest of a send). The statuses due
together, up to ``batch_max`` of any numbers, go in one POST, as Meta batches them under load. Nothing
is spawned per webhook, and a slow receiver makes the heap grow (``pending``) instead of the task
count. A POST that is not answered 200 is retried with the same bytes and exponential back-off until
``retry_horizon_s`` after its first attempt (Meta retries for up to 7 days).
Bodies are signed with ``payloads.signed`` over the exact ASCII-escaped bytes sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
from pydantic import BaseModel, ConfigDict, Field

from metasim import payloads
from metasim.poster import HttpxPoster, Poster, PostFailed, StreamPoster

log = logging.getLogger(__name__)


class WebhookSettings(BaseModel):
    """How statuses come back (``PUT /_sim/webhooks`` changes any subset at run time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="False: accepted messages get no status webhooks at all")
    sent_delay_s: float = Field(0.05, ge=0, description="accept → sent")
    delivered_delay_s: float = Field(0.1, ge=0, description="sent → delivered")
    read_delay_s: float = Field(0.2, ge=0, description="delivered → read")
    jitter_s: float = Field(0.02, ge=0, description="uniform 0..jitter added to each delay")
    read: bool = True
    duplicate_rate: float = Field(0.0, ge=0, le=1, description="share of statuses posted twice")
    reorder_rate: float = Field(0.0, ge=0, le=1, description="share of messages whose statuses come reversed")
    batch_max: int = Field(100, ge=1, le=1000, description="most statuses in one POST (those due together)")
    batch_window_s: float = Field(0.0, ge=0, description="statuses due this soon join the batch")
    retry_initial_s: float = Field(0.5, gt=0)
    retry_factor: float = Field(2.0, ge=1)
    retry_max_s: float = Field(60.0, gt=0, description="cap of one back-off step")
    retry_horizon_s: float = Field(3600.0, ge=0, description="give up this long after the first attempt")
    timeout_s: float = Field(10.0, gt=0, description="per POST")
    sync_131047: bool = Field(False, description="refuse out-of-window free-form with a 400, not a status")


class Route(NamedTuple):
    """Where a status belongs in the envelope."""

    waba_id: str
    phone_number_id: str
    display_phone_number: str


@dataclass(slots=True)
class _Job:
    """One status to post, and the rest of its message's chain (planned loop time, status)."""

    route: Route
    status: dict[str, Any]
    rest: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


@dataclass(slots=True)
class _Batch:
    """One POST: its jobs, its exact bytes (reused by retries) and its attempt history."""

    jobs: list[_Job]
    raw: bytes
    headers: dict[str, str]
    first_at: float
    attempt: int = 0


@dataclass(slots=True)
class Counters:
    """POSTs answered 200 (``posted``), statuses in them, customers' messages, retries and failures."""

    posted: int = 0
    statuses: int = 0
    inbound: int = 0
    account: int = 0
    retried: int = 0
    failed_attempts: int = 0
    abandoned: int = 0
    duplicates: int = 0


CONTACT = "_contact"  # a status's recipient as the change's ``contacts[]`` names it (``{wa_id, user_id}``)


def addressed(chain: list[tuple[float, dict[str, Any]]], contact: dict[str, Any] | None
              ) -> list[tuple[float, dict[str, Any]]]:
    """``chain`` for a known customer: ``contacts`` beside each status, and a recipient without a number
    named by ``recipient_user_id`` (its BSUID) instead of ``recipient_id``."""
    if contact is None:
        return chain
    for _, status in chain:
        status[CONTACT] = contact
        if "wa_id" not in contact:
            status.pop("recipient_id", None)
            status["recipient_user_id"] = contact["user_id"]
    return chain


def batch_body(jobs: list[_Job]) -> dict[str, Any]:
    """One envelope for several statuses: one entry per WABA, one change per number, with the ``contacts``
    of the recipients it names."""
    entries: dict[str, dict[str, list[dict[str, Any]]]] = {}
    displays: dict[str, str] = {}
    contacts: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        waba, number, display = job.route
        status = {k: v for k, v in job.status.items() if k != CONTACT}
        entries.setdefault(waba, {}).setdefault(number, []).append(status)
        displays[number] = display
        mine = contacts.setdefault(number, [])
        if job.status.get(CONTACT) and job.status[CONTACT] not in mine:
            mine.append(job.status[CONTACT])
    return {"object": "whatsapp_business_account", "entry": [
        {"id": waba, "changes": [payloads.messages_change(number, display=displays[number], statuses=statuses,
                                                          contacts=contacts[number])
                                 for number, statuses in numbers.items()]}
        for waba, numbers in entries.items()]}


def billing(category: str, *, free: bool, conversation_id: str, expires_at: int | None,
            with_conversation: bool) -> dict[str, Any]:
    """The ``pricing`` (per-message model) and, before v24.0, ``conversation`` of a status."""
    out: dict[str, Any] = {"pricing": {"billable": not free, "pricing_model": "PMP",
                                       "type": "free_customer_service" if free else "regular",
                                       "category": category}}
    if with_conversation:
        conversation: dict[str, Any] = {"id": conversation_id}
        if expires_at is not None:
            conversation["expiration_timestamp"] = str(expires_at)
        out["conversation"] = {**conversation, "origin": {"type": category}}
    return out


def delivery_chain(settings: WebhookSettings, wamid: str, recipient: str, *, callback_data: str | None,
                   bill: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    """sent → delivered (→ read); pricing/conversation ride on sent and delivered, as Meta documents."""
    steps = [(settings.sent_delay_s, "sent"), (settings.delivered_delay_s, "delivered")]
    if settings.read:
        steps.append((settings.read_delay_s, "read"))
    chain = []
    for delay, value in steps:
        status = payloads.status(wamid, value, recipient, callback_data=callback_data)
        if value != "read":
            status.update(bill)
        if value == "delivered" and "conversation" in bill:
            status["conversation"] = {k: v for k, v in bill["conversation"].items() if k != "expiration_timestamp"}
        chain.append((delay, status))
    return chain


def failure_chain(settings: WebhookSettings, wamid: str, recipient: str, *, error: dict[str, Any],
                  callback_data: str | None) -> list[tuple[float, dict[str, Any]]]:
    """One ``failed`` status carrying ``error`` (no pricing, no conversation)."""
    status = payloads.status(wamid, "failed", recipient, callback_data=callback_data)
    status["errors"] = [error]
    return [(settings.sent_delay_s, status)]


class CallbackSender:
    """Posts signed webhooks to one callback URL; started lazily or by the app's lifespan."""

    def __init__(self, url: str, secret: str, settings: WebhookSettings, *, concurrency: int = 4,
                 seed: int | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.settings = settings
        self.counters = Counters()
        self._secret = secret
        self._concurrency = concurrency
        self._transport = transport
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not crypto
        self._heap: list[tuple[float, int, _Job | _Batch]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._ready: asyncio.Queue[_Batch] | None = None
        self._client: Poster | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        """Statuses neither answered 200 nor given up on yet (queued, ready or in flight)."""
        return self._pending

    def start(self) -> None:
        """Open the client and start the tasks (needs a running event loop); idempotent."""
        if self._tasks:
            return
        self._wake = asyncio.Event()
        self._ready = asyncio.Queue(maxsize=self._concurrency * 2)
        self._client = StreamPoster(self.url, connections=self._concurrency) if self._transport is None \
            else HttpxPoster(self.url, self._transport, connections=self._concurrency)
        self._tasks = [asyncio.create_task(self._schedule(), name="metasim-webhook-scheduler")]
        self._tasks += [asyncio.create_task(self._post_loop(), name=f"metasim-webhook-poster-{i}")
                        for i in range(self._concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def drain(self) -> None:
        """Wait until nothing is pending (wrap in ``asyncio.timeout`` to bound the wait)."""
        await self._idle.wait()

    def _count(self, delta: int) -> None:
        self._pending += delta
        if self._pending:
            self._idle.clear()
        else:
            self._idle.set()

    def chain(self, route: Route, statuses: list[tuple[float, dict[str, Any]]], *, epoch: float) -> None:
        """Queue one message's statuses, each with its delay in seconds after the previous one.

        Each status gets its ``timestamp`` from ``epoch`` (now, on the simulator's clock) plus its
        planned delay, so timestamps keep the logical order even when the posts are reordered.
        """
        if not statuses or not self.settings.enabled:
            return
        self.start()
        now = asyncio.get_running_loop().time()
        planned, at = [], now
        for delay, status in statuses:
            at += delay + self._rng.uniform(0, self.settings.jitter_s)
            status["timestamp"] = str(int(epoch + at - now))
            planned.append((at, status))
        self._count(len(planned))
        if len(planned) > 1 and self._rng.random() < self.settings.reorder_rate:
            times = [t for t, _ in planned]
            planned = list(zip(times, [s for _, s in reversed(planned)], strict=True))
        self._push(planned[0][0], _Job(route, planned[0][1], planned[1:]))

    async def post_now(self, body: dict[str, Any]) -> bool:
        """Post one webhook at once (a customer's message); True when answered 200. Not retried."""
        self.start()
        raw, headers = payloads.signed(body, self._secret)
        ok = await self._post(raw, headers)
        self.counters.inbound += ok
        return ok

    async def post_account(self, body: dict[str, Any], *, attempts: int = 5) -> bool:
        """Post one account-level webhook (a template's status, quality or category) at once, retried with
        back-off while not answered 200; True when it was."""
        self.start()
        raw, headers = payloads.signed(body, self._secret)
        for attempt in range(attempts):
            if await self._post(raw, headers):
                self.counters.account += 1
                return True
            await asyncio.sleep(0.2 * 2 ** attempt)
        return False

    def _push(self, due: float, item: _Job | _Batch) -> None:
        if isinstance(item, _Job) and self._rng.random() < self.settings.duplicate_rate:
            self.counters.duplicates += 1
            self._count(1)
            copy = _Job(item.route, item.status)
            heapq.heappush(self._heap, (due + self._rng.uniform(0, 0.05), next(self._seq), copy))
        heapq.heappush(self._heap, (due, next(self._seq), item))
        self._wake.set()

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._heap or self._heap[0][0] > loop.time():
                self._wake.clear()
                timeout = self._heap[0][0] - loop.time() if self._heap else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                continue
            _, _, item = heapq.heappop(self._heap)
            batch = item if isinstance(item, _Batch) else self._gather(item, loop.time())
            assert self._ready is not None
            await self._ready.put(batch)

    def _gather(self, first: _Job, now: float) -> _Batch:
        jobs, horizon = [first], now + self.settings.batch_window_s
        while (len(jobs) < self.settings.batch_max and self._heap and self._heap[0][0] <= horizon
               and isinstance(self._heap[0][2], _Job)):
            jobs.append(heapq.heappop(self._heap)[2])  # type: ignore[arg-type]
        raw, headers = payloads.signed(batch_body(jobs), self._secret)
        return _Batch(jobs, raw, headers, first_at=now)

    async def _post_loop(self) -> None:
        assert self._ready is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._ready.get()
            ok = await self._post(batch.raw, batch.headers)
            now = loop.time()
            if ok:
                self.counters.statuses += len(batch.jobs)
                self._advance(batch, now)
                continue
            batch.attempt += 1
            step = min(self.settings.retry_initial_s * self.settings.retry_factor ** (batch.attempt - 1),
                       self.settings.retry_max_s)
            if now + step - batch.first_at > self.settings.retry_horizon_s:
                self.counters.abandoned += len(batch.jobs)
                self._advance(batch, now)
            else:
                self.counters.retried += 1
                self._push(now + step, batch)

    def _advance(self, batch: _Batch, now: float) -> None:
        self._count(-len(batch.jobs))
        for job in batch.jobs:
            if job.rest:
                (due, status), rest = job.rest[0], job.rest[1:]
                self._push(max(due, now), _Job(job.route, status, rest))

    async def _post(self, raw: bytes, headers: dict[str, str]) -> bool:
        assert self._client is not None
        try:
            status = await self._client.post(raw, headers, self.settings.timeout_s)
        except PostFailed as exc:  # refused, reset, timed out: Meta retries those too
            log.debug("webhook POST failed: %s", exc)
            self.counters.failed_attempts += 1
            return False
        if status != 200:
            self.counters.failed_attempts += 1
            return False
        self.counters.posted += 1
        return True
