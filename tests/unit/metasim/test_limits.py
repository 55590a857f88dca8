"""metasim.limits: throughput per number, pair rate, portfolio tier, and the order of the checks."""

from __future__ import annotations

import asyncio

import pytest

from metasim.limits import PairLimit, PortfolioTier, Throughput
from tests.unit.metasim.test_app import CUSTOMER, NUMBER, WABA, error_code, harness, template


def test_throughput_counts_fixed_one_second_windows() -> None:
    limiter = Throughput()
    for _ in range(3):
        assert limiter.allows("n", 3, 10.9)
        limiter.commit("n", 10.9)
    assert not limiter.allows("n", 3, 10.99)
    assert limiter.allows("n", 3, 11.0) and limiter.allows("m", 3, 10.9)
    assert limiter.per_second == {"n": {10: 3}}


def test_pair_limit_bursts_then_refills_one_per_interval() -> None:
    pair = PairLimit(burst=3, interval_s=6.0)
    key = ("n", "u")
    for _ in range(3):
        assert pair.allows(key, 0.0)
        pair.commit(key, 0.0)
    assert not pair.allows(key, 5.9)
    assert pair.allows(key, 6.0) and pair.allows(("n", "other"), 0.0)
    pair.commit(key, 6.0)
    assert not pair.allows(key, 6.1)
    assert pair.allows(key, 1000.0)


def test_portfolio_tier_counts_unique_recipients_in_a_rolling_window() -> None:
    tier = PortfolioTier(window_s=100.0)
    for at, wa_id in ((0.0, "a"), (50.0, "b")):
        assert tier.allows("biz", wa_id, 2, at)
        tier.commit("biz", wa_id, at)
    assert not tier.allows("biz", "c", 2, 60.0)
    assert tier.allows("biz", "a", 2, 60.0), "a recipient already counted costs nothing"
    assert tier.allows("biz", "c", None, 60.0) and tier.allows("other", "c", 2, 60.0)
    assert tier.allows("biz", "c", 2, 100.0), "a's seat is free once it left the window"
    assert tier.used("biz", 100.0) == 1


async def test_30_sends_in_one_second_at_20_per_second() -> None:
    async with harness(throughput=20) as h:
        responses = await asyncio.gather(*(h.send(template(to=f"1555000{i:04d}")) for i in range(30)))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) == 20
        assert {error_code(r) for r in responses if r.status_code != 200} == {130429}
        per_second = (await h.client.get("/_sim/counts")).json()["per_second"][NUMBER]
        assert per_second == {str(int(h.clock())): 20}
        assert max(per_second.values()) <= 20
        h.clock.at += 1
        assert (await h.send(template(to="15559999999"))).status_code == 200


@pytest.mark.parametrize(("spec", "expected"), [({"level": "COEXISTENCE"}, 20), ({"level": "HIGH"}, 1000),
                                                ({"throughput": 1000}, 1000), ({}, 80)])
async def test_throughput_levels(spec: dict[str, object], expected: int) -> None:
    async with harness() as h:
        response = await h.client.post("/_sim/numbers", json={"phone_number_id": "2002", "waba_id": WABA, **spec})
        assert response.json()["throughput"] == expected


async def test_pair_limit_after_a_burst_of_45() -> None:
    async with harness(throughput=1000) as h:
        responses = [await h.send(template()) for _ in range(46)]
        assert [r.status_code for r in responses[:45]] == [200] * 45
        assert error_code(responses[45]) == 131056
        assert (await h.send(template(to="15550000002"))).status_code == 200, "other recipients are unaffected"
        h.clock.at += 6
        assert (await h.send(template())).status_code == 200
        assert error_code(await h.send(template())) == 131056


async def test_portfolio_tier_is_shared_by_the_numbers_of_a_business() -> None:
    async with harness(throughput=1000) as h:
        await h.client.post("/_sim/numbers", json={"phone_number_id": NUMBER, "waba_id": WABA, "business_id": "biz-1",
                                                   "tier": 2, "throughput": 1000})
        await h.client.post("/_sim/numbers", json={"phone_number_id": "2002", "waba_id": WABA, "business_id": "biz-1"})
        assert (await h.send(template(to="15550000001"))).status_code == 200
        assert (await h.send(template(to="15550000002"), number="2002")).status_code == 200
        refused = await h.send(template(to="15550000003"))
        assert refused.status_code == 400 and error_code(refused) == 131048
        assert (await h.send(template(to="15550000001"), number="2002")).status_code == 200
        await h.customer_writes(wa_id="15550000004")
        assert (await h.send(template(to="15550000004"))).status_code == 200, "in-window templates are free"
        h.clock.at += 86400
        assert (await h.send(template(to="15550000003"))).status_code == 200


async def test_refusals_consume_nothing_and_limits_come_before_templates() -> None:
    async with harness(throughput=2) as h:
        for _ in range(5):
            assert error_code(await h.send(template(name="missing"))) == 132001
        assert NUMBER not in h.sim.limits.throughput.per_second
        assert (await h.send(template())).status_code == 200
        assert (await h.send(template())).status_code == 200
        assert error_code(await h.send(template(name="missing"))) == 130429
        assert h.sim.counts.by_recipient == {CUSTOMER: 2}


async def test_paused_template_uses_metas_code() -> None:
    async with harness() as h:
        await h.client.post("/_sim/templates", json={"waba_id": WABA, "name": "promo", "language": "en_US",
                                                     "status": "PAUSED", "category": "MARKETING"})
        assert error_code(await h.send(template(name="promo", params=0))) == 132015


def test_sliding_throughput_window_holds_for_any_start() -> None:
    limiter = Throughput("sliding")
    for at in (10.6, 10.7):
        assert limiter.allows("n", 2, at)
        limiter.commit("n", at)
    assert not limiter.allows("n", 2, 11.2), "fixed windows would allow this one"
    assert limiter.allows("n", 2, 11.61)
    assert limiter.per_second == {"n": {10: 2}}
