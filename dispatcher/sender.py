"""One send request, start to finish: replay, policy gate, limits, the Graph call, the verdict.

``Sender.process`` returns a ``Verdict``: a result to publish (accepted or failed), a retry to
publish on ``outbound.retry``, or "try again later" (held account, another process's attempt
in flight). The idempotency record in Redis is written before and after the call, so a
redelivered request re-emits its recorded result instead of reaching Meta again; only an
attempt whose outcome is unknown (timeout after sending, or a crash mid-call) may be repeated,
once, and it is counted as ambiguous.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from campaigns.states import WAITING_TIER
from config import redis_keys
from config.settings import DispatcherSettings
from dispatcher.accounts import Accounts, NumberProfile
from dispatcher.campaigns import SENDING, CampaignGate
from dispatcher.coalesce import ScriptBatcher
from dispatcher.exceptions import (
    AmbiguousOutcome,
    AuthorizationError,
    DispatchError,
    GraphError,
    PairRateLimitError,
    ThrottlingError,
    human_reason,
)
from dispatcher.graph import GraphClient
from dispatcher.idempotency import IdempotencyStore, Record, State
from dispatcher.media import STALE_MEDIA_CODES, MediaUnavailable, MediaUploads
from dispatcher.metrics import GRAPH_SECONDS, HELD_CHECKS, NUMBER_WAIT, PAIR_WAIT, SPACING_WAIT
from dispatcher.pacing import CallGate, NumberPacer, Place
from dispatcher.ratelimit import RateLimiter
from schemas.campaigns import CampaignHeld, parse_key
from schemas.outbound import (
    OUTSIDE_SERVICE_WINDOW,
    SERVICE_WINDOW_S,
    OutboundRequest,
    OutboundResult,
    local_failure,
)
from templates import TemplateSendError
from templates.registry import Registry

log = logging.getLogger(__name__)
# Graph's answer time to a send, averaged over about the last 50 calls: it sizes the calls let on the wire
# (``gate_size``). It starts where Meta's slowest answers are and follows what it measures.
ANSWER_START_S = 0.4
ANSWER_MAX_S = 1.0
ANSWER_WEIGHT = 0.02
# Graph calls on the wire at once: twice the calls that came to the gate in the last half second times the answer time
# (Little's law), at least 32, at most the connections. Counting the calls that came, not only those answered, sizes a
# binding gate for its demand: a 1,000 msg/s number answered in 250 ms sends at its rate 0.75 s after its first call,
# where doubling the answered calls took 2.5 s (``bench dispatch``'s ``rate1000_meta`` 0.93-0.94 then). A fixed 512
# on loopback, where 10 suffice, let the calls come in bursts, and a reply behind a campaign waited for the simulator
# to take them (``bench dispatch``'s lanes: p99 148-217 ms against 43-46 with 32).
GATE_WINDOW_S = 0.5
GATE_MIN = 32
GATE_GROWTH = 2.0
RECORD_TRIES = 8  # recording a call's outcome waits out a Redis restart: about 5 s (0.1, 0.2, 0.4, 0.8, then 1 s apart)


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A send Aerostic's own policy refuses (a local failure), recorded only once no earlier result exists."""

    reason: str
    details: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a request after ``process``: exactly one field is set."""

    result: OutboundResult | None = None
    retry: OutboundRequest | None = None
    later_s: float | None = None
    account_held: bool = False  # with ``later_s``: the number's account cannot send, so its other requests wait too
    held: CampaignHeld | None = None  # a campaign's message not sent now (tier): its campaign hears why
    dropped: str | None = None  # a campaign's message not sent at all (paused, cancelled): the reason


def gate_size(rate: float, answer_s: float, connections: int) -> int:
    """Graph calls let on the wire at once, sending ``rate`` calls a second answered in ``answer_s``."""
    return min(connections, max(GATE_MIN, math.ceil(GATE_GROWTH * rate * answer_s)))


class Sender:
    """The per-request pipeline; shared by all of the dispatcher's workers."""

    def __init__(self, settings: DispatcherSettings, *, accounts: Accounts, graph: GraphClient,
                 campaigns: CampaignGate, scripts: ScriptBatcher, media: MediaUploads | None = None) -> None:
        self.settings = settings
        self.media = media
        self.campaigns = campaigns
        self.accounts = accounts
        self.graph = graph
        self.scripts = scripts  # the Redis calls of concurrent sends share pipelines (one per event-loop turn)
        self.idempotency = IdempotencyStore(self.scripts)
        self.limits = RateLimiter(self.scripts, margin=settings.rate_margin, pair_interval_s=settings.pair_interval_s,
                                  pair_burst=settings.pair_burst)
        self.owner = f"{settings.worker_id}:{os.getpid()}:{time.time():.0f}"
        self.counts: Counter[str] = Counter()
        self.pacer = NumberPacer(self.limits)
        self.templates = Registry(accounts.engine)
        self._calls = CallGate(min(GATE_MIN, settings.http_connections))  # calls beyond it wait, replies first
        self.answer_s = ANSWER_START_S  # Graph's answer time to a send, a moving average (``answered``)
        self._answers = 0  # calls answered since the gate was last sized, at ``_sized_at`` (monotonic)
        self._came = 0  # calls that came to the gate (their rate slots granted) since then
        self._sized_at = time.monotonic()

    async def process(self, request: OutboundRequest) -> Verdict:
        """Send ``request``, or say why not; a request already finished replays its recorded result.

        A send that passes every check reads its record only when it claims it (one Redis call: a final
        record is replayed there); a check that would refuse or delay the request reads the record first,
        so a redelivered request is still answered with what it got the first time.
        """
        checked = await self._check(request)
        if isinstance(checked, tuple):
            return await self._send(request, *checked)
        return await self._unless_finished(request, checked)

    async def _unless_finished(self, request: OutboundRequest, outcome: Verdict | _Refusal) -> Verdict:
        """The recorded result of a request finished earlier, else ``outcome`` (a refusal recorded now)."""
        record = await self.idempotency.get(request.idempotency_key)
        if record is not None and record.final:
            self.counts["replayed"] += 1
            return Verdict(result=_from_record(request, record))
        if isinstance(outcome, _Refusal):
            return await self._local(request, outcome.reason, outcome.details)
        return outcome

    async def _check(self, request: OutboundRequest) -> Verdict | _Refusal | tuple[NumberProfile, dict[str, Any]]:
        """The policy checks before a send: a verdict (not now), a refusal (never), or the profile and body."""
        profile = await self.accounts.profile(request.phone_number_id)
        if profile is None or profile.tenant_id != request.tenant_id:
            return _Refusal("not_connected", "this phone number is not connected to the tenant's WhatsApp account")
        if not profile.sendable:
            self.counts["held"] += 1
            HELD_CHECKS.inc()
            self.accounts.forget(request.phone_number_id)
            return Verdict(later_s=self.settings.hold_recheck_s, account_held=True)
        if request.message_type == "template":  # automations', campaigns' and the API's: Meta never sees a 1320xx
            try:               # that the registry predicts
                await self.templates.check(request.tenant_id, profile.waba_id, request.message)
            except TemplateSendError as exc:
                return _Refusal(exc.code, f"{exc.reason} (Meta would answer {exc.meta_code})")
        # A campaign's state is read in the same turn as the window's marker (one wake-up, not two).
        asked = self.campaigns.ask(request.campaign_id) if request.campaign_id else None
        in_window = await self._in_window(request)
        if request.is_free_form and not in_window:
            if asked is not None:
                asked.cancel()  # not needed: its reply is dropped
            return _Refusal(OUTSIDE_SERVICE_WINDOW, "free-form messages can only be sent within 24 hours of the "
                                                    "customer's last message; send an approved template instead")
        if asked is not None and (stopped := await self._campaign_stopped(request, asked)):
            return stopped
        if request.message_type == "template" and not in_window and self.settings.rate_limits \
                and not await self.limits.reserve_recipient(profile.business_id or profile.waba_id, request.to,
                                                            profile.tier_limit):
            if request.campaign_id:  # a campaign waits for the tier instead of failing
                return self._held(request, WAITING_TIER)
            return _Refusal("messaging_limit_reached",
                            f"the business portfolio reached its limit of {profile.tier_limit} unique recipients "
                            "of templates in 24 hours")
        try:  # Aerostic's media ids become Meta's (uploaded once per number) before the claim, as the slots
            body = await self._body(request, profile)
        except MediaUnavailable as exc:
            return _Refusal("media_unavailable", str(exc))
        except DispatchError as exc:  # the upload failed: no message left
            if exc.is_transient and request.attempt + 1 < self.settings.max_attempts:
                return self._retry(request, exc.retry_after or 0.0, ambiguous=False)
            return _Refusal("media_upload_failed", human_reason(exc))
        return profile, body

    async def _send(self, request: OutboundRequest, profile: NumberProfile, body: dict[str, Any]) -> Verdict:
        if self.settings.rate_limits:  # before the claim: a record is in flight only while the call is
            await self._take_slots(request, profile)
        self._arrived()
        place = await self._calls.take(interactive=request.lane == "interactive")
        try:  # a connection first: a record is in flight only while its call is
            if request.campaign_id and (stopped := await self._campaign_stopped(request)):
                return await self._unless_finished(request, stopped)  # again right before the call: exact
            claimed = await self._claim(request)
            if isinstance(claimed, Verdict):
                return claimed
            return await self._call(request, profile, body, place, ambiguous_before=claimed)
        finally:
            place.release()

    async def _campaign_stopped(self, request: OutboundRequest, asked: asyncio.Future[Any] | None = None
                                ) -> Verdict | None:
        """None while the request's campaign is running; else drop it (a resume hands its recipients again).
        ``asked``: its state's read, already queued."""
        assert request.campaign_id is not None
        state = await self.campaigns.state(request.campaign_id, asked)
        if state == SENDING:
            return None
        self.counts[f"campaign_{state}"] += 1
        return Verdict(dropped=f"campaign {state}")

    def _held(self, request: OutboundRequest, reason: str) -> Verdict:
        assert request.campaign_id is not None
        self.counts["campaign_held"] += 1
        parsed = parse_key(request.idempotency_key)
        contact = parsed[1] if parsed else request.to
        return Verdict(held=CampaignHeld(event_id=f"{request.message_id}:held:{time.time():.3f}",
                                         campaign_id=request.campaign_id, tenant_id=request.tenant_id,
                                         contact=contact, reason=reason, at=datetime.now(UTC)))

    async def _in_window(self, request: OutboundRequest) -> bool:
        until = request.window_until
        if until > time.time() + 60:  # clearly open: a newer inbound could only extend it
            return True
        try:
            marker = await self.scripts.get(redis_keys.service_window(request.phone_number_id, request.to))
        except Exception as exc:  # the request's own window still decides
            log.warning("service window marker unreadable: %s", exc)
            marker = None
        if marker is not None:
            until = max(until, float(marker) + SERVICE_WINDOW_S)
        return until > time.time()

    async def _claim(self, request: OutboundRequest) -> bool | Verdict:
        """Own the next attempt. Returns whether an earlier attempt's outcome was unknown, or a Verdict."""
        record, epoch = await self.idempotency.begin_since(request.idempotency_key, owner=self.owner)
        if record is None:
            if request.created_at.timestamp() < epoch - 1:  # Redis lost its records since: maybe sent
                await self.idempotency.mark_ambiguous(request.idempotency_key)
                self.counts["ambiguous"] += 1
                self.counts["redis_lost"] += 1
                return True
            return False
        if record.final:
            self.counts["replayed"] += 1
            return Verdict(result=_from_record(request, record))
        unknown = record.in_flight
        if unknown and not self._owner_dead(record):
            return Verdict(later_s=max(1.0, self.settings.request_timeout_s + 5 - record.age_s))
        if unknown:  # an earlier run died mid-call: Meta may or may not have the message
            if record.ambiguous:
                return await self._ambiguous_failure(request)
            await self.idempotency.mark_ambiguous(request.idempotency_key)
            self.counts["ambiguous"] += 1
        if not await self.idempotency.claim_retry(request.idempotency_key, owner=self.owner,
                                                  attempts=record.attempts):
            return Verdict(later_s=1.0)
        return unknown or record.ambiguous

    def _arrived(self) -> None:
        """A call comes to the gate. The first since the gate was sized starts the window it is sized over: a window
        begun before a quiet spell spread a busy half second's calls over the spell, and the gate stayed at 32."""
        if not self._came and not self._answers:
            self._sized_at = time.monotonic()
        self._came += 1

    def answered(self, elapsed_s: float) -> None:
        """Count one Graph call's answer time (a silent call's counts as ``ANSWER_MAX_S``), and size the gate each
        ``GATE_WINDOW_S`` for the calls that came to it or were answered, whichever is more."""
        GRAPH_SECONDS.observe(elapsed_s)
        self.answer_s += ANSWER_WEIGHT * (min(elapsed_s, ANSWER_MAX_S) - self.answer_s)
        self._answers += 1
        now = time.monotonic()
        if now - self._sized_at >= GATE_WINDOW_S:
            rate = max(self._answers, self._came) / (now - self._sized_at)
            self._calls.resize(gate_size(rate, self.answer_s, self.settings.http_connections))
            self._answers, self._came, self._sized_at = 0, 0, now

    def _owner_dead(self, record: Record) -> bool:
        """A record left in flight by an earlier run of this worker, or old enough to have timed out."""
        worker = self.settings.worker_id + ":"
        earlier_run = record.owner.startswith(worker) and record.owner != self.owner
        return earlier_run or record.age_s > self.settings.request_timeout_s + 5

    async def _take_slots(self, request: OutboundRequest, profile: NumberProfile) -> None:
        """Wait for the number's next rate slot (interactive first), then the recipient pair's."""
        started = time.monotonic()
        await self.pacer.slot(request.phone_number_id, float(profile.throughput_mps),
                              interactive=request.lane == "interactive")
        slotted = time.monotonic()
        NUMBER_WAIT.observe(slotted - started)
        while (wait := await self.limits.acquire_pair(request.phone_number_id, request.to)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        PAIR_WAIT.observe(time.monotonic() - slotted)

    async def _body(self, request: OutboundRequest, profile: NumberProfile) -> dict[str, Any]:
        body = request.graph_body()
        if self.media is None:
            return body
        return await self.media.body(body, tenant_id=request.tenant_id, phone_number_id=request.phone_number_id,
                                     token=lambda: self.accounts.token(profile))

    async def _call(self, request: OutboundRequest, profile: NumberProfile, body: dict[str, Any], place: Place, *,
                    ambiguous_before: bool) -> Verdict:
        """The Graph call, then its outcome recorded; ``place`` (the call's connection) is given back in between,
        so the next send's call does not wait for this one's Redis round trip."""
        key = request.idempotency_key
        attempts = request.attempt + 1
        if self.settings.rate_limits:
            started = time.monotonic()
            await self.pacer.spaced(request.phone_number_id, float(profile.throughput_mps),
                                    interactive=request.lane == "interactive")
            SPACING_WAIT.observe(time.monotonic() - started)
        called = time.monotonic()
        try:
            try:
                accepted = await self.graph.send_message(request.phone_number_id, self.accounts.token(profile), body)
            finally:
                place.release()
                self.answered(time.monotonic() - called)
        except AmbiguousOutcome as exc:
            self.counts["ambiguous"] += 1
            await self._record(key, state=State.DEFERRED, ambiguous=True)
            if ambiguous_before:
                return await self._ambiguous_failure(request, reason=human_reason(exc))
            return self._retry(request, 0.5, ambiguous=True)
        except AuthorizationError as exc:
            await self._record(key, state=State.DEFERRED, error_code=exc.code)
            await self.accounts.mark_needs_reauth(profile, human_reason(exc))
            self.counts["needs_reauth"] += 1
            log.warning("WABA %s needs re-authorisation (code %s); its sends are held", profile.waba_id, exc.code)
            return Verdict(later_s=self.settings.hold_recheck_s, account_held=True)
        except DispatchError as exc:
            transient = exc.is_transient
            code = exc.code if isinstance(exc, GraphError) else None
            if isinstance(exc, ThrottlingError) and getattr(exc, "slows_lane", False):
                await self.limits.slow_down(request.phone_number_id)
            if isinstance(exc, PairRateLimitError):
                await self.limits.penalize_pair(request.phone_number_id, request.to, exc.retry_after or 6.0)
            if self.media is not None and request.attempt == 0 and code in STALE_MEDIA_CODES \
                    and await self.media.forget(request.message, request.phone_number_id):
                transient = True  # Meta no longer has the file we uploaded: once more, uploading it again
            if transient and attempts < self.settings.max_attempts:
                await self._record(key, state=State.DEFERRED, error_code=code)
                return self._retry(request, exc.retry_after or 0.0, ambiguous=ambiguous_before)
            await self._record(key, state=State.FAILED, error_code=code, error_title=human_reason(exc),
                                          ambiguous=ambiguous_before)
            self.counts["failed"] += 1
            return Verdict(result=self._result(request, "failed", error_code=code, error_title=human_reason(exc),
                                               error_details=getattr(exc, "details", None) or None,
                                               ambiguous=ambiguous_before))
        await self._record(key, state=State.ACCEPTED, wamid=accepted.wamid, ambiguous=ambiguous_before)
        self.counts["accepted"] += 1
        return Verdict(result=self._result(request, "accepted", wamid=accepted.wamid, wa_id=accepted.wa_id,
                                           ambiguous=ambiguous_before))

    async def _record(self, key: str, **outcome: Any) -> None:
        """Record the outcome of ``key``'s Graph call, retrying while Redis is unreachable (it may be restarting).

        The call has happened: its verdict must go out whatever Redis says. Raising instead would give the request
        back to the scheduler, which would call Meta again; and if Redis came back empty, the claim would find no
        record of a request made moments ago and send it twice uncounted (an accepted or ambiguous call). After
        ``RECORD_TRIES`` tries the verdict goes out unrecorded; its offset is committed once it is published, so only
        a crash before that commit reads the request again (and a claim after the epoch then counts it as
        ambiguous when it is old enough).
        """
        delay = 0.1
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                await self.idempotency.finish(key, **outcome)
                return
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if attempt == RECORD_TRIES:
                    log.error("the call for %s not recorded in Redis (%s); its verdict is published", key, exc)
                    return
                log.warning("the call for %s not recorded yet (%s); retrying in %.1fs", key, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _retry(self, request: OutboundRequest, minimum_s: float, *, ambiguous: bool) -> Verdict:
        base = min(self.settings.retry_max_s, self.settings.retry_base_s * 2 ** request.attempt)
        delay = max(minimum_s, base * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security
        self.counts["retried"] += 1
        return Verdict(retry=request.model_copy(update={
            "attempt": request.attempt + 1, "not_before": time.time() + delay,
            "ambiguous": request.ambiguous + (1 if ambiguous else 0)}))

    async def _local(self, request: OutboundRequest, reason: str, details: str) -> Verdict:
        result = local_failure(request, reason, details, attempts=request.attempt)
        await self.idempotency.finish(request.idempotency_key, state=State.FAILED, wamid=result.wamid,
                                      error_code=result.error_code, error_title=reason)
        self.counts["local_failed"] += 1
        return Verdict(result=result)

    async def _ambiguous_failure(self, request: OutboundRequest, *,
                                 reason: str = "outcome unknown after a retry") -> Verdict:
        title = f"ambiguous_outcome: {reason}"
        await self.idempotency.finish(request.idempotency_key, state=State.FAILED, error_title=title, ambiguous=True)
        self.counts["failed"] += 1
        return Verdict(result=self._result(request, "failed", error_title=title, ambiguous=True))

    def _result(self, request: OutboundRequest, outcome: str, **fields: object) -> OutboundResult:
        return OutboundResult.model_validate({
            "event_id": f"{request.message_id}:result", "tenant_id": request.tenant_id,
            "message_id": request.message_id, "idempotency_key": request.idempotency_key,
            "phone_number_id": request.phone_number_id, "to": request.to, "outcome": outcome,
            "attempts": request.attempt + 1, "campaign_id": request.campaign_id, **fields})


def _from_record(request: OutboundRequest, record: Record) -> OutboundResult:
    """The recorded outcome of a request that was already finished (a redelivery)."""
    local = bool(record.wamid and record.wamid.startswith("local."))
    return OutboundResult(
        event_id=f"{request.message_id}:result", tenant_id=request.tenant_id, message_id=request.message_id,
        idempotency_key=request.idempotency_key, phone_number_id=request.phone_number_id, to=request.to,
        outcome="accepted" if record.state is State.ACCEPTED else "failed", wamid=record.wamid,
        error_code=record.error_code, error_title=record.error_title, attempts=record.attempts,
        ambiguous=record.ambiguous, local=local, replayed=True, campaign_id=request.campaign_id)
