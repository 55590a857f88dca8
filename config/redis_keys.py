"""Every Redis key Aerostic uses, in one place (prefix ``aer:``).

Writers and readers in different processes build keys only through these functions, so a
key's shape has one source of truth.
"""

from __future__ import annotations

from collections.abc import Callable

PREFIX = "aer:"


def idempotency_epoch() -> str:
    """When the current idempotency state began (set by ``aerostic migrate``; a missing key means Redis was lost)."""
    return f"{PREFIX}idem-epoch"


def routed(dedupe_key: str) -> str:
    """The router's mark that a webhook event (message by wamid, status by wamid and status) was routed."""
    return f"{PREFIX}routed:{dedupe_key}"


def conversation(key: str) -> str:
    """The conversation processor's state of one conversation (a hash); its single writer is the processor."""
    return f"{PREFIX}conv:{key}"


def idempotency(key: str) -> str:
    """The dispatcher's at-most-once record of one send request."""
    return f"{PREFIX}idem:{key}"


def service_window(phone_number_id: str, wa_id: str) -> str:
    """Epoch seconds of the customer's last inbound message (24-hour window); set by the processor."""
    return f"{PREFIX}window:{phone_number_id}:{wa_id}"


def number_bucket(phone_number_id: str) -> str:
    """Token bucket of one phone number's throughput (messages per second)."""
    return f"{PREFIX}rate:number:{phone_number_id}"


def number_replies(phone_number_id: str) -> str:
    """Set for a moment while a number's replies are booked: its bulk slots are then booked only a few ms ahead."""
    return f"{PREFIX}rate:replies:{phone_number_id}"


def api_rate(tenant_id: str) -> str:
    """GCRA state (theoretical arrival time) of one tenant's requests to the tenant API."""
    return f"{PREFIX}rate:api:{tenant_id}"


def pair_bucket(phone_number_id: str, wa_id: str) -> str:
    """Token bucket of one (business number, recipient) pair."""
    return f"{PREFIX}rate:pair:{phone_number_id}:{wa_id}"


def portfolio_recipients(business_id: str) -> str:
    """Sorted set of unique template recipients outside the window in the rolling 24 h, per portfolio."""
    return f"{PREFIX}tier:{business_id}"


def lane_slowdown(phone_number_id: str) -> str:
    """Adaptive slow-down factor of a number after Meta answered 130429/131056."""
    return f"{PREFIX}slow:{phone_number_id}"


def oauth_nonce(nonce: str) -> str:
    """A single-use OAuth ``state`` nonce."""
    return f"{PREFIX}oauth:{nonce}"


def login_attempts_pair(account_digest: str, address: str) -> str:
    """Login attempts at one account (a digest of its email, not the email) from one address in the window."""
    return f"{PREFIX}login-attempt:pair:{account_digest}:{address}"


def login_attempts_account(account_digest: str) -> str:
    """Login attempts at one account from every address in the current window."""
    return f"{PREFIX}login-attempt:account:{account_digest}"


def login_attempts_address(address: str) -> str:
    """Login attempts from one client address at every account in the current window."""
    return f"{PREFIX}login-attempt:addr:{address}"


def signup_attempt(attempt_id: str) -> str:
    """The dispatcher's outcome of one signup attempt (a redelivered request republishes it, never re-runs)."""
    return f"{PREFIX}signup:{attempt_id}"


def agent(tenant_id: str, agent_id: str) -> str:
    """An agent's capacity, open conversations, last assignment time and teams (a hash)."""
    return f"{PREFIX}agent:{tenant_id}:{agent_id}"


def agent_presence(tenant_id: str, agent_id: str) -> str:
    """``online`` or ``away`` while the agent's console sends heartbeats (expires without them)."""
    return f"{PREFIX}presence:{tenant_id}:{agent_id}"


def tenant_agents(tenant_id: str) -> str:
    """The set of a tenant's agent ids."""
    return f"{PREFIX}agents:{tenant_id}"


def handoff_queue(tenant_id: str, team: str) -> str:
    """Conversations waiting for an agent of ``team`` ("" for anyone), scored by when they started waiting."""
    return f"{PREFIX}queue:{tenant_id}:{team}"


def tenant_config_version(tenant_id: str) -> str:
    """Bumped by the API on every change of a tenant's rules, settings or knowledge base (caches reload)."""
    return f"{PREFIX}config-version:{tenant_id}"


def campaign_state(campaign_id: str) -> str:
    """A campaign's state as the API last set it; the dispatcher reads it right before each of its sends."""
    return f"{PREFIX}campaign:{campaign_id}:state"


def template_creations(waba_id: str) -> str:
    """A WABA's template creations sent to Meta in the last hour (a sorted set scored by time)."""
    return f"{PREFIX}template-creations:{waba_id}"


def template_request(request_id: str) -> str:
    """The dispatcher's final result of one template request (a redelivered request republishes it)."""
    return f"{PREFIX}template-request:{request_id}"


def meta_media(phone_number_id: str, media_id: str) -> str:
    """Meta's media id of one of Aerostic's media files uploaded for a number (expires before Meta forgets it)."""
    return f"{PREFIX}meta-media:{phone_number_id}:{media_id}"


def ai_worker(worker_id: str) -> str:
    """An AI worker's health (JSON: which offline provider answers and why), expiring unless refreshed."""
    return f"{PREFIX}ai-worker:{worker_id}"


def identity(tenant_id: str, name: str) -> str:
    """A customer's identity (a number or a BSUID) → the person's one identity; a cache of ``contact_identities``."""
    return f"{PREFIX}identity:{tenant_id}:{name}"


def around(shape: Callable[[str], str]) -> tuple[str, str]:
    """The text before and after the variable part of a key shape, for Lua scripts that build keys of ids they
    find (``head .. id .. tail``): ``around(lambda a: agent(tenant_id, a))``."""
    head, _, tail = shape(_MARK).partition(_MARK)
    return head, tail


_MARK = "\x00"
