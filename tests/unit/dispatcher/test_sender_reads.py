"""The sender's Redis calls around a Graph call, on a real redis-server: how many turns (wake-ups) the reads before a
campaign's call take, and that the call's connection is not held while its outcome is recorded."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from config import redis_keys
from config.settings import DispatcherSettings
from dispatcher.accounts import NumberProfile
from dispatcher.campaigns import CampaignGate
from dispatcher.coalesce import ScriptBatcher
from dispatcher.graph import SendAccepted
from dispatcher.idempotency import State
from dispatcher.metrics import HELD_CHECKS
from dispatcher.sender import ANSWER_MAX_S, ANSWER_START_S, ANSWER_WEIGHT, GATE_MIN, GATE_WINDOW_S, Sender, gate_size
from schemas.outbound import OutboundRequest

PNID = "1500"


class _Accounts:
    """A connected number (the sender's only use of its accounts before a call)."""

    engine: Any = None

    async def profile(self, phone_number_id: str) -> NumberProfile:
        return NumberProfile(phone_number_id=phone_number_id, tenant_id="t", waba_id="w", business_id="b",
                             throughput_mps=80, tier_limit=None, account_status="connected",
                             token_ciphertext=b"x", token_key_id="k")

    def token(self, profile: NumberProfile) -> str:
        return "token"


def _sender(redis: aioredis.Redis) -> tuple[Sender, ScriptBatcher]:
    scripts = ScriptBatcher(redis)
    settings = DispatcherSettings(environment="test", vault_keys=SecretStr("k1:" + "A" * 44), rate_limits=False)
    sender = Sender(settings, accounts=_Accounts(), graph=None,  # type: ignore[arg-type]
                    campaigns=CampaignGate(redis, None, scripts), scripts=scripts)  # type: ignore[arg-type]

    async def approved(*_: object) -> None:
        return None

    sender.templates.check = approved  # type: ignore[method-assign,assignment]
    return sender, scripts


def _campaign_send(campaign_id: str, to: str) -> OutboundRequest:
    return OutboundRequest(event_id=f"{campaign_id}:{to}", tenant_id="t", message_id=f"{campaign_id}:{to}",
                           idempotency_key=f"t:{campaign_id}:{to}", phone_number_id=PNID, to=to,
                           message={"type": "template", "template": {"name": "offer", "language": {"code": "en"}}},
                           lane="bulk", campaign_id=campaign_id, created_at=datetime.now(UTC))


async def test_a_campaign_send_reads_its_window_and_its_campaign_in_one_turn(redis_client: aioredis.Redis,
                                                                             uid: str) -> None:
    sender, scripts = _sender(redis_client)
    await redis_client.set(redis_keys.campaign_state(uid), "running")
    checked = await sender._check(_campaign_send(uid, "15550001"))
    assert isinstance(checked, tuple)  # the profile and the body: it may be sent
    assert (scripts.calls, scripts.pipelines) == (2, 1)  # the window's marker and the campaign's state
    await scripts.aclose()


async def test_a_paused_campaign_is_stopped_by_that_same_turn(redis_client: aioredis.Redis, uid: str) -> None:
    sender, scripts = _sender(redis_client)
    await redis_client.set(redis_keys.campaign_state(uid), "paused")
    await redis_client.set(redis_keys.service_window(PNID, "15550002"), str(datetime.now(UTC).timestamp()))
    verdict = await sender._check(_campaign_send(uid, "15550002"))
    assert not isinstance(verdict, tuple) and getattr(verdict, "dropped", None) == "campaign paused"
    assert (scripts.calls, scripts.pipelines) == (2, 1)
    await scripts.aclose()


class _Graph:
    """Meta accepting every send."""

    async def send_message(self, phone_number_id: str, token: str, body: dict[str, Any]) -> SendAccepted:
        return SendAccepted(wamid=f"wamid.{body['to']}", message_status="accepted", wa_id=body["to"])


async def test_a_calls_connection_is_given_back_before_its_outcome_is_recorded(redis_client: aioredis.Redis,
                                                                               uid: str) -> None:
    """The next send's call need not wait for this one's Redis round trip: the gate's place is free by then."""
    sender, scripts = _sender(redis_client)
    sender.graph = _Graph()  # type: ignore[assignment]
    await redis_client.set(redis_keys.campaign_state(uid), "running")
    finish = sender.idempotency.finish
    free_when_recorded: list[int] = []

    async def recording(key: str, **outcome: Any) -> bool:
        free_when_recorded.append(sender._calls.free)
        return await finish(key, **outcome)

    sender.idempotency.finish = recording  # type: ignore[method-assign]
    verdict = await sender.process(_campaign_send(uid, "15550003"))
    assert verdict.result is not None and verdict.result.outcome == "accepted"
    assert free_when_recorded == [sender._calls.size]  # with the place still held: one fewer
    record = await sender.idempotency.get(f"t:{uid}:15550003")
    assert record is not None and record.state is State.ACCEPTED and record.wamid == "wamid.15550003"
    await scripts.aclose()


class _HeldAccounts(_Accounts):
    """A number whose account waits for re-authorisation."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    async def profile(self, phone_number_id: str) -> NumberProfile:
        return replace(await super().profile(phone_number_id), account_status="needs_reauth")

    def forget(self, phone_number_id: str) -> None:
        self.forgotten.append(phone_number_id)


async def test_a_held_accounts_send_holds_its_number_and_reads_the_account_afresh_next_time(
        redis_client: aioredis.Redis, uid: str) -> None:
    sender, scripts = _sender(redis_client)
    sender.accounts = accounts = _HeldAccounts()  # type: ignore[assignment]
    checks = HELD_CHECKS._value.get()
    verdict = await sender.process(_campaign_send(uid, "15550003"))
    assert (verdict.later_s, verdict.account_held) == (sender.settings.hold_recheck_s, True)
    assert verdict.result is None and verdict.retry is None  # not failed, not retried: it waits
    assert accounts.forgotten == [PNID]  # the next check reads whether it was reconnected
    assert HELD_CHECKS._value.get() == checks + 1
    await scripts.aclose()


async def test_each_calls_answer_time_is_counted(redis_client: aioredis.Redis, uid: str) -> None:
    """Graph's answer time sizes the calls let on the wire (``dispatcher.sender.gate_size``): every call counts."""
    sender, scripts = _sender(redis_client)
    sender.graph = _Graph()  # type: ignore[assignment]
    await redis_client.set(redis_keys.campaign_state(uid), "running")
    counted: list[float] = []
    answered = sender.answered

    def counting(elapsed_s: float) -> None:
        counted.append(elapsed_s)
        answered(elapsed_s)

    sender.answered = counting  # type: ignore[method-assign]
    before = sender.answer_s
    verdict = await sender.process(_campaign_send(uid, "15550004"))
    assert verdict.result is not None and verdict.result.outcome == "accepted"
    assert len(counted) == 1 and 0 <= counted[0] < before
    assert sender.answer_s < before  # an answer quicker than the starting guess pulls the average down
    await scripts.aclose()


def test_the_answer_time_follows_graph_and_a_silent_call_counts_as_the_most(redis_client: aioredis.Redis) -> None:
    sender, _ = _sender(redis_client)
    assert sender.answer_s == ANSWER_START_S
    for _ in range(500):
        sender.answered(0.005)
    assert 0.005 <= (settled := sender.answer_s) < 0.006
    sender.answered(30.0)  # a call that timed out
    assert sender.answer_s == pytest.approx(settled + ANSWER_WEIGHT * (ANSWER_MAX_S - settled))


def test_a_binding_gate_is_sized_for_the_calls_that_came_to_it(redis_client: aioredis.Redis) -> None:
    """Sends whose slots were granted wait at a gate of 32 while 32 calls take Meta's 250 ms: sized from the calls
    answered (64 a second), the gate would double each half second; sized from those that came, it opens at once."""
    sender, _ = _sender(redis_client)
    connections = sender.settings.http_connections
    sender._came = 480  # a 1,000 msg/s number's slots, granted in the last half second
    sender._sized_at -= GATE_WINDOW_S
    sender.answered(0.25)  # the first of the 32 calls on the wire answers
    assert sender._calls.size == gate_size(480 / GATE_WINDOW_S, sender.answer_s, connections) > 4 * GATE_MIN
    sender._sized_at -= GATE_WINDOW_S  # a quiet half second: one call came and was answered
    sender._came = 1
    sender.answered(0.25)
    assert sender._calls.size == GATE_MIN


def test_after_a_quiet_spell_the_gate_is_sized_over_the_half_second_since_its_first_call(
        redis_client: aioredis.Redis) -> None:
    """A dispatcher idle for a minute, then a campaign on a 1,000 msg/s number with Meta answering in 250 ms: the
    first sizing counts the calls over the time since the first of them came, not since the gate was last sized."""
    sender, _ = _sender(redis_client)
    sender._sized_at -= 60  # a quiet minute: nothing came, nothing was answered
    for _ in range(480):
        sender._arrived()
    sender._sized_at -= GATE_WINDOW_S  # half a second later, the first call answers
    sender.answered(0.25)
    assert sender._calls.size > 4 * GATE_MIN
