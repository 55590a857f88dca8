"""Every Aerostic process of the running stack serves Prometheus metrics on its own port, and after traffic the
figures operators watch have moved: webhooks accepted by the ingress, records handled by the stream runtime, sends
accepted by the dispatcher, AI decisions, lag reported. Each consumer group of every process counts its partition
assignments. The web server's public port serves no metrics."""

from __future__ import annotations

import random

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import catalogue
from stack.launcher import METRICS_COMMANDS, LocalStack
from tests.integration.helpers import BusinessFactory, Samples, customer_writes, scrape, total, wait_for

pytestmark = pytest.mark.usefixtures("pipeline_ready")


async def serving(stack: LocalStack, child: str) -> Samples:
    """``child``'s samples once it serves them (a process still starting on a loaded machine is waited for)."""
    async def probe() -> Samples | None:
        try:
            return await scrape(stack, child)
        except httpx.TransportError:
            return None

    samples: Samples = await wait_for(probe, timeout=120, what=f"{child} to serve its metrics")
    return samples


async def test_every_process_serves_the_figures_of_its_traffic(
        stack: LocalStack, business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient,
        db: AsyncEngine) -> None:
    # Processes of the stack that are running (a test may have started and stopped one of its own).
    served = {name for name in stack.metrics_ports if name in stack.children and stack.children[name].alive()}
    assert {"ingress", "streams", "campaigns", "projector", "ai", "dispatcher", "deliverer"} <= served
    assert {stack.children[name].argv[3] for name in served} <= METRICS_COMMANDS
    before = {name: await serving(stack, name) for name in sorted(served)}

    business = await business_factory("metrics")
    customer = f"1556{random.randrange(10**6, 10**7)}"
    await customer_writes(sim, db, business, customer)  # webhook → ingress → router → conversations → AI
    sent = await api.post("/v1/messages", headers=business.auth, json={
        "from": business.phone_number_id, "to": customer, "type": "text", "text": {"body": "Your order shipped"}})
    assert sent.status_code == 202, sent.text

    async def moved(child: str, name: str, **labels: str) -> float:
        now = total(await scrape(stack, child), name, **labels)
        return now - total(before[child], name, **labels)

    async def grew(child: str, name: str, **labels: str) -> float:
        """How much ``name`` grew since ``before``, once it did (figures are counted when batches complete)."""
        grown: float = await wait_for(lambda: moved(child, name, **labels), timeout=60,
                                      what=f"{child} to count {name} {labels}")
        return grown

    assert await grew("dispatcher", "aerostic_dispatcher_sends_total", lane="interactive", result="accepted") >= 1
    assert await grew("ingress", "aerostic_ingress_webhooks_total", result="accepted") >= 1
    assert await grew("ingress", "aerostic_ingress_append_seconds_count") >= 1
    assert await grew("streams", "aerostic_stream_records_total", group="aerostic-router") >= 1
    assert await grew("streams", "aerostic_stream_batches_total", group="aerostic-conversations") >= 1
    assert await grew("streams", "aerostic_consumer_commits_total", group="aerostic-router", result="ok") >= 1
    assert await grew("streams", "aerostic_producer_records_total") >= 1
    assert await grew("dispatcher", "aerostic_dispatcher_graph_seconds_count") >= 1
    assert await grew("ai", "aerostic_ai_decisions_total") >= 1
    streams = await scrape(stack, "streams")
    lags = [value for (name, labels), value in streams.items()
            if name == "aerostic_consumer_lag_records" and ("group", "aerostic-router") in labels]
    assert lags and all(value >= 0 for value in lags)
    for name in served:  # the client's process figures, which the benchmarks read
        assert total(await scrape(stack, name), "process_cpu_seconds_total") > 0


GROUPS = {"streams": {catalogue.ROUTER_GROUP, catalogue.CONVERSATIONS_GROUP},
          "projector": {catalogue.PROJECTOR_GROUP}, "ai": {catalogue.AI_GROUP},
          "campaigns": {catalogue.CAMPAIGN_EXPANDER_GROUP, catalogue.CAMPAIGN_RECIPIENTS_GROUP,
                        catalogue.CAMPAIGN_FUNNEL_GROUP},
          "deliverer": {catalogue.DELIVERER_GROUP},
          "dispatcher": {catalogue.DISPATCHER_GROUP, catalogue.SIGNUP_GROUP, catalogue.TEMPLATES_GROUP,
                         catalogue.MEDIA_GROUP},
          "ingress": set()}


async def test_each_group_of_every_process_counts_its_assignments(stack: LocalStack) -> None:
    """What ``LocalStack.stop_in_turn`` reads to stop any process between rebalances: each group the process
    consumes in shows how many assignments it received, and each has received one."""
    for child, groups in GROUPS.items():
        async def joined(child: str = child) -> list[dict[str, float]]:
            counts = {dict(labels)["group"]: value for (name, labels), value in (await serving(stack, child)).items()
                      if name == "aerostic_consumer_assignments_total"}
            return [counts] if all(counts.values()) else []

        [counts] = await wait_for(joined, timeout=60, what=f"{child}'s assignment in each of its groups")
        assert set(counts) == groups, child


async def test_the_public_web_port_serves_no_metrics(api: httpx.AsyncClient) -> None:
    response = await api.get("/metrics")
    assert response.status_code == 404 and "aerostic_" not in response.text
