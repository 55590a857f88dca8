"""Sending pending deliveries: per endpoint at most ``concurrency`` at once, one at a time per conversation, in
order; retries with exponential back-off and jitter until the horizon, then a dead letter; an endpoint that
answers 410, or fails for ``disable_after``, is disabled with its reason.

PostgreSQL is the queue. A tick asks, per active endpoint, for the due heads (the oldest pending delivery of each
ordering key, nothing older still pending for it), claims them with a lease (``next_attempt_at`` moves past the
timeout, so a crash mid-attempt only delays them), and starts each attempt as its own task; the tick never waits
on an endpoint, so a hanging one holds only its own slots.

Between ticks the scheduler sleeps until the next pending delivery is due (``NEXT_DUE``: a retry's back-off, a
lease) or until it is woken: by its intake when deliveries were queued, by an attempt that ended (it freed a slot
and maybe the next of its conversation), by a redelivery. A due delivery left behind in a tick is behind one of
those. It sleeps at most ``webhook_idle_poll_s``: what another process made due (an endpoint switched back on) is
seen within that.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import DelivererSettings
from deliverer.http import Attempt, Clients, deliver
from deliverer.metrics import ATTEMPT_SECONDS, RESULTS
from webhooks.urls import Policy

log = logging.getLogger(__name__)

LEASE_MARGIN_S = 30.0
GONE = 410

DUE_HEADS = text("""
SELECT e.id AS endpoint_id, e.url, e.secret, e.previous_secret, e.previous_secret_until,
       h.id, h.event_id, h.ordering_key, h.attempts, h.created_at, h.seq, ev.body
FROM webhook_endpoints e
CROSS JOIN LATERAL (
    SELECT d.id, d.event_id, d.ordering_key, d.attempts, d.created_at, d.seq FROM webhook_deliveries d
    WHERE d.endpoint_id = e.id AND d.state = 'pending' AND d.next_attempt_at <= now()
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
                      AND p.ordering_key = d.ordering_key AND p.state = 'pending' AND p.seq < d.seq)
    ORDER BY d.seq LIMIT :per_endpoint) h
JOIN webhook_events ev ON ev.event_id = h.event_id
WHERE e.enabled AND e.disabled_at IS NULL
ORDER BY h.seq
LIMIT :total
""")
# The soonest future attempt of an active endpoint, in seconds from now: it reads only pending deliveries (the
# partial ``ix_webhook_deliveries_head``), never the log of finished ones.
NEXT_DUE = text("""
SELECT extract(epoch FROM d.next_attempt_at - now()) FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.state = 'pending' AND d.next_attempt_at > now() AND e.enabled AND e.disabled_at IS NULL
ORDER BY d.next_attempt_at LIMIT 1
""")
HEADS_MAX = 2000  # due heads taken in one tick; a tick that took this many is followed by another at once
CLAIM = text("""
UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => :lease)
WHERE id = ANY(CAST(:ids AS uuid[])) AND state = 'pending' AND next_attempt_at <= now()
RETURNING id
""")
DELIVERED = text("""
UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, response_status = :status,
    latency_ms = :latency, last_error = NULL, last_attempt_at = now(), finished_at = now()
WHERE id = :id
""")
HEALTHY = text("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = :endpoint AND failing_since IS NOT NULL")
FAILED = text("""
UPDATE webhook_deliveries SET attempts = attempts + 1, response_status = :status, latency_ms = :latency,
    last_error = :error, last_attempt_at = now(),
    state = CASE WHEN :dead THEN 'dead' ELSE 'pending' END,
    finished_at = CASE WHEN :dead THEN now() END,
    next_attempt_at = now() + make_interval(secs => :delay)
WHERE id = :id
""")
HOLD_BEHIND = text("""
UPDATE webhook_deliveries SET next_attempt_at = greatest(next_attempt_at, now() + make_interval(secs => :delay))
WHERE endpoint_id = :endpoint AND ordering_key = :key AND state = 'pending' AND seq > :seq
""")
FAILING = text("""
UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now())
WHERE id = :endpoint RETURNING failing_since
""")
DISABLE = text("""
UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = :reason, updated_at = now()
WHERE id = :endpoint AND disabled_at IS NULL
""")


def backoff_s(attempts: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random) -> float:
    """The wait after the ``attempts``-th failure: exponential from ``base_s`` up to ``max_s``, "equal jitter"
    (between half and all of it)."""
    ceiling = min(max_s, base_s * 2 ** min(attempts - 1, 40))
    return ceiling / 2 + rand() * ceiling / 2


def describe(attempt: Attempt) -> str:
    return attempt.error or f"HTTP {attempt.status}"


class Scheduler:
    """Finds due deliveries and sends them; ``wake`` is set when new ones were queued."""

    def __init__(self, engine: AsyncEngine, settings: DelivererSettings, wake: asyncio.Event) -> None:
        self.engine = engine
        self.settings = settings
        self.wake = wake
        self.policy = Policy(production=settings.is_production,
                             allow_loopback=settings.webhooks_allow_loopback and not settings.is_production)
        self.clients = Clients(concurrency=settings.webhook_concurrency, timeout_s=settings.webhook_timeout_s)
        self.in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            self.wake.clear()  # before the tick: a wake-up during it is not lost
            due_in = await self.tick()
            idle = self.settings.webhook_idle_poll_s
            if due_in is not None and due_in <= 0:
                continue
            try:
                await asyncio.wait_for(self.wake.wait(), idle if due_in is None else min(due_in, idle))
            except TimeoutError:
                pass

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.clients.close()

    async def tick(self) -> float | None:
        """Start the due heads' attempts; then the seconds until the next pending delivery is due (0: this tick
        took as many as one takes, more may be due; None: none is pending in the future)."""
        per_endpoint = self.settings.webhook_concurrency
        async with self.engine.begin() as conn:
            heads = [dict(r._mapping) for r in await conn.execute(
                DUE_HEADS, {"per_endpoint": per_endpoint, "total": HEADS_MAX})]
            chosen, taking = [], Counter[str]()
            for head in heads:
                endpoint = head["endpoint_id"]
                if self.in_flight[endpoint] + taking[endpoint] < per_endpoint:
                    taking[endpoint] += 1
                    chosen.append(head)
            claimed: set[str] = set()
            if chosen:
                lease = self.settings.webhook_timeout_s + LEASE_MARGIN_S
                claimed = {str(r.id) for r in await conn.execute(CLAIM, {"ids": [str(h["id"]) for h in chosen],
                                                                         "lease": lease})}
            more_due = len(heads) >= HEADS_MAX and bool(claimed)  # else the due heads wait for busy slots
            due_in = 0.0 if more_due else (await conn.execute(NEXT_DUE)).scalar()
        for head in chosen:
            if str(head["id"]) in claimed:
                self.in_flight[head["endpoint_id"]] += 1
                task = asyncio.create_task(self._attempt(head))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return None if due_in is None else float(due_in)

    async def _attempt(self, head: dict[str, Any]) -> None:
        endpoint = head["endpoint_id"]
        try:
            secrets = [head["secret"]]
            until = head["previous_secret_until"]
            if head["previous_secret"] and until is not None and until > datetime.now(UTC):
                secrets.append(head["previous_secret"])
            attempt = await deliver(self.clients.get(endpoint, head["url"]), head["url"], self.policy,
                                    event_id=head["event_id"], body=head["body"].encode(), secrets=secrets,
                                    timeout_s=self.settings.webhook_timeout_s)
            await self._settle(head, attempt)
        except Exception:  # PostgreSQL away: the lease runs out and the delivery is tried again
            log.exception("delivery %s to endpoint %s could not be settled", head["id"], endpoint)
        finally:
            self.in_flight[endpoint] -= 1
            if self.in_flight[endpoint] <= 0:
                del self.in_flight[endpoint]
            self.wake.set()

    async def _settle(self, head: dict[str, Any], attempt: Attempt) -> None:
        endpoint, params = head["endpoint_id"], {"id": head["id"], "status": attempt.status,
                                                 "latency": attempt.latency_ms}
        ATTEMPT_SECONDS.observe(attempt.latency_ms / 1000.0)
        async with self.engine.begin() as conn:
            if attempt.ok:
                await conn.execute(DELIVERED, params)
                await conn.execute(HEALTHY, {"endpoint": endpoint})
                RESULTS["delivered"].inc()
                return
            settings = self.settings
            age = datetime.now(UTC) - head["created_at"]
            dead = age >= timedelta(seconds=settings.webhook_retry_horizon_s) and attempt.status != GONE
            delay = 0.0 if attempt.status == GONE else backoff_s(
                head["attempts"] + 1, settings.webhook_retry_base_s, settings.webhook_retry_max_s)
            await conn.execute(FAILED, {**params, "error": describe(attempt)[:500], "dead": dead, "delay": delay})
            RESULTS["gone" if attempt.status == GONE else "dead" if dead else "retry"].inc()
            if not dead:
                await conn.execute(HOLD_BEHIND, {"endpoint": endpoint, "key": head["ordering_key"],
                                                 "seq": head["seq"], "delay": delay})
            since = (await conn.execute(FAILING, {"endpoint": endpoint})).scalar_one()
            if attempt.status == GONE:
                reason = "the endpoint answered 410 Gone"
            elif datetime.now(UTC) - since >= timedelta(seconds=settings.webhook_disable_after_s):
                reason = f"failing since {since.isoformat(timespec='seconds')} (last: {describe(attempt)[:200]})"
            else:
                return
            await conn.execute(DISABLE, {"endpoint": endpoint, "reason": reason})
            log.warning("webhook endpoint %s disabled: %s", endpoint, reason)
