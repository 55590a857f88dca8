"""In-process enforcement of Meta's sending rules, in the order the simulated Graph API applies them.

``POST /{version}/{phone_number_id}/messages`` answers with the first check that fails:

1. Bearer token (header, or ``access_token`` query): missing, unknown or revoked → 190, HTTP 401.
2. Phone number id registered → else 100 "Unsupported post request. Object with ID … does not exist", or
   133010 for an Embedded Signup number not yet registered (``POST /{phone_number_id}/register``).
3. The token grants the number's WABA → else 190, HTTP 401.
4. Fault injection (``faults.py``): latency, then maybe a 5xx, a dropped connection or accept-then-hang.
5. Body validation (``send_models.validate_send``) → 100 with its message.
6. Mark-as-read / typing indicator → ``{"success": true}``; no limit below applies to it.
7. Throughput per number: accepted messages per 1-second window ≤ 80 / 1000 / 20 → else 130429
   (epoch-second windows by default; ``throughput_window="sliding"`` for any 1-second window).
8. Pair rate per (number, recipient): token bucket, burst 45, one token back every 6 s → else 131056.
9. Template: (WABA, name, language) registered and APPROVED → else 132001 (PAUSED → 132015 and
   DISABLED → 132016, Meta's own codes); parameter counts per component equal (and, for a named template,
   the names) → else 132000; parameter types as its components define → else 132012
   (``template_models.send_problem``).
10. 24-hour window: free-form to a recipient whose last message is older, or who never wrote → 131047,
    as a failed status after a 200 (default) or a synchronous 400 (``sync_131047``).
11. Portfolio tier: templates to recipients outside their window count unique recipients per
    business portfolio in a rolling 24 h (250 / 2,000 / 10,000 / 100,000 / unlimited) → 131048
    ("Spam rate limit hit", Meta's code for sending restrictions; Meta documents no dedicated one).
12. Undeliverable recipients → 200, then a failed status 131026; a MARKETING template to a recipient
    marked with ``POST /_sim/recipients/marketing-limited`` → 200, then a failed status 131049 (Meta's
    per-user marketing limit). A paced template (``POST /_sim/templates/pacing``) delivers its first
    ``pacing_batch`` sends; later ones answer ``message_status: held_for_quality_assessment`` and are
    delivered ``pacing_hold_s`` later.

Steps 1-3 are ``authorise`` and 7-12 ``check_send`` here; 4-6 are in ``app.py``. Checks only look;
``commit`` consumes the throughput slot, pair token and tier seat once the whole request is accepted,
so a refusal at a later step costs nothing. Check and commit run without an ``await`` between them,
so concurrent requests cannot race.
https://developers.facebook.com/docs/whatsapp/throughput
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from metasim.graph_errors import error_body
from metasim.template_models import send_problem

if TYPE_CHECKING:
    from metasim.send_models import SendRequest
    from metasim.state import Number, Simulator
    from metasim.template_models import SimTemplate

THROUGHPUT_LEVELS = {"STANDARD": 80, "HIGH": 1000, "COEXISTENCE": 20}
TIERS: tuple[int | None, ...] = (250, 2000, 10000, 100000, None)
TIER_NAMES: dict[str, int | None] = {"TIER_50": 50, "TIER_250": 250, "TIER_1K": 1000, "TIER_2K": 2000,
                                     "TIER_10K": 10000, "TIER_100K": 100000, "TIER_UNLIMITED": None}
TEMPLATE_STATUS_CODES = {"PAUSED": 132015, "DISABLED": 132016}
FREE_IN_WINDOW = frozenset({"service", "utility"})
UNSUPPORTED_POST = ("Unsupported post request. Object with ID '{id}' does not exist, cannot be loaded due to missing "
                    "permissions, or does not support this operation. Please read the Graph API documentation at "
                    "https://developers.facebook.com/docs/graph-api")


class Throughput:
    """Accepted messages per number in 1-second windows; ``per_second`` is what benchmarks check.

    ``fixed`` windows are epoch seconds; ``sliding`` refuses whenever the last second (any start)
    already holds ``limit`` accepted messages, which is stricter at second boundaries.
    """

    def __init__(self, window: Literal["fixed", "sliding"] = "fixed") -> None:
        self.window = window
        self.per_second: defaultdict[str, dict[int, int]] = defaultdict(dict)
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)

    def allows(self, phone_number_id: str, limit: int, now: float) -> bool:
        if self.window == "sliding":
            recent = self._recent[phone_number_id]
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            return len(recent) < limit
        seconds = self.per_second.get(phone_number_id)
        return (seconds.get(int(now), 0) if seconds else 0) < limit

    def commit(self, phone_number_id: str, now: float) -> None:
        seconds = self.per_second[phone_number_id]
        seconds[int(now)] = seconds.get(int(now), 0) + 1
        if self.window == "sliding":
            self._recent[phone_number_id].append(now)


class PairLimit:
    """A token bucket per (number, recipient): ``burst`` tokens, one back every ``interval_s``."""

    def __init__(self, burst: int = 45, interval_s: float = 6.0) -> None:
        self.burst = burst
        self.interval_s = interval_s
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def _level(self, key: tuple[str, str], now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + max(0.0, now - at) / self.interval_s)

    def allows(self, key: tuple[str, str], now: float) -> bool:
        return self._level(key, now) >= 1.0

    def commit(self, key: tuple[str, str], now: float) -> None:
        self._buckets[key] = (self._level(key, now) - 1.0, now)


class PortfolioTier:
    """Unique recipients of out-of-window templates per business portfolio in a rolling window."""

    def __init__(self, window_s: float = 86400.0) -> None:
        self.window_s = window_s
        self._seen: defaultdict[str, OrderedDict[str, float]] = defaultdict(OrderedDict)

    def _recent(self, business_id: str, now: float) -> OrderedDict[str, float]:
        seen = self._seen[business_id]
        while seen:  # oldest first: drop whoever left the rolling window
            wa_id, at = next(iter(seen.items()))
            if now - at < self.window_s:
                break
            del seen[wa_id]
        return seen

    def allows(self, business_id: str, wa_id: str, tier: int | None, now: float) -> bool:
        if tier is None:
            return True
        seen = self._recent(business_id, now)
        return wa_id in seen or len(seen) < tier

    def commit(self, business_id: str, wa_id: str, now: float) -> None:
        seen = self._recent(business_id, now)
        seen.pop(wa_id, None)
        seen[wa_id] = now

    def used(self, business_id: str, now: float) -> int:
        return len(self._recent(business_id, now))


class Limits:
    """The three limiters of one simulator."""

    def __init__(self, *, pair_burst: int, pair_interval_s: float, tier_window_s: float,
                 throughput_window: Literal["fixed", "sliding"] = "fixed") -> None:
        self.throughput = Throughput(throughput_window)
        self.pair = PairLimit(pair_burst, pair_interval_s)
        self.tier = PortfolioTier(tier_window_s)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of steps 7-12: refuse now (``error``), or accept (then fail if ``failure``)."""

    error: int | None = None
    details: str | None = None
    failure: int | None = None
    category: str = "service"
    free: bool = True
    counts_for_tier: bool = False
    template: tuple[str, str, str] | None = None  # the template sent (its sends are counted for pacing)
    held: bool = False  # held_for_quality_assessment (a paced template past its first batch)


def token_refusal(sim: Simulator, token: str) -> tuple[int, dict[str, Any]] | None:
    """Step 1 (shared with the onboarding endpoints): the 190 answer for a missing, unknown or revoked token."""
    if not token:
        return error_body(190, details="An access token is required to request this resource.")
    if token not in sim.tokens:
        status, body = error_body(190, message="Invalid OAuth access token - Cannot parse access token")
        body["error"].pop("error_subcode", None)
        return status, body
    if token in sim.revoked:
        status, body = error_body(190, details="The session has been invalidated because the user changed their "
                                               "password or Facebook has changed the session for security reasons.")
        body["error"]["error_subcode"] = 460
        return status, body
    return None


def authorise(sim: Simulator, token: str, phone_number_id: str
              ) -> tuple[Number | None, tuple[int, dict[str, Any]] | None]:
    """Steps 1-3: a live token, a known number, and the token granting its WABA; else the error answer.

    A number seeded through Embedded Signup and not yet registered answers 133010 to a token that grants
    its WABA.
    """
    refusal = token_refusal(sim, token)
    if refusal is not None:
        return None, refusal
    waba_ids = sim.tokens[token]
    number = sim.numbers.get(phone_number_id)
    if number is None:
        pending = sim.signup.numbers.get(phone_number_id)
        if pending is not None and pending.waba_id in waba_ids:
            return None, error_body(133010)
        if pending is None:
            return None, error_body(100, message=UNSUPPORTED_POST.format(id=phone_number_id))
    if number is None or number.waba_id not in waba_ids:
        return None, error_body(190, details=f"The access token does not grant access to phone number "
                                             f"{phone_number_id}.")
    return number, None


def check_send(sim: Simulator, number: Number, request: SendRequest, now: float, *, wa_id: str | None = None
               ) -> Verdict:
    """Steps 7-12 for one validated send request (state is only read); ``wa_id`` names the customer as the
    simulator keeps them (their number, else their BSUID) when the request named them otherwise."""
    pnid, wa_id = number.phone_number_id, wa_id or request.wa_id
    if not sim.limits.throughput.allows(pnid, number.throughput, now):
        return Verdict(error=130429)
    if not sim.limits.pair.allows((pnid, wa_id), now):
        return Verdict(error=131056)
    in_window = sim.window_open(pnid, wa_id, now)
    category, counts_for_tier = "service", False
    if request.template is not None:
        template = sim.template(number.waba_id, request.template.name, request.template.language_code)
        if template is None:
            return Verdict(error=132001)
        refusal = _template_refusal(template, request)
        if refusal is not None:
            return refusal
        category = template.category.lower()
        if not in_window:
            tier = sim.tier_of(number.business_id)
            if not sim.limits.tier.allows(number.business_id, wa_id, tier, now):
                return Verdict(error=sim.config.tier_error_code,
                               details=f"Business portfolio messaging limit of {tier} unique users per 24 hours "
                                       "reached.")
            counts_for_tier = True
    elif not in_window:
        if sim.webhooks.settings.sync_131047:
            return Verdict(error=131047)
        return Verdict(failure=131047)
    key = (number.waba_id, request.template.name, request.template.language_code) if request.template else None
    if wa_id in sim.undeliverable:
        return Verdict(failure=131026, category=category, template=key)
    if category == "marketing" and wa_id in sim.marketing_limited:
        return Verdict(failure=131049, category=category, template=key)
    free = in_window and category in FREE_IN_WINDOW
    held = key is not None and sim.templates[key].paced \
        and sim.template_sends[key] >= sim.template_settings.pacing_batch
    return Verdict(category=category, free=free, counts_for_tier=counts_for_tier, template=key, held=held)


def _template_refusal(template: SimTemplate, request: SendRequest) -> Verdict | None:
    if template.status not in ("APPROVED", "FLAGGED"):
        return Verdict(error=TEMPLATE_STATUS_CODES.get(template.status, 132001))
    problem = send_problem(template, request.template.components if request.template else [])
    if problem is not None:
        return Verdict(error=problem[0], details=problem[1])
    return None


def commit(sim: Simulator, number: Number, wa_id: str, verdict: Verdict, now: float) -> None:
    """Consume what an accepted request uses: throughput slot, pair token, tier seat."""
    sim.limits.throughput.commit(number.phone_number_id, now)
    sim.limits.pair.commit((number.phone_number_id, wa_id), now)
    if verdict.counts_for_tier and verdict.failure is None:
        sim.limits.tier.commit(number.business_id, wa_id, now)
    if verdict.template is not None:
        sim.template_sends[verdict.template] += 1
