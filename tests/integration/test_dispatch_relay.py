"""The bare dispatcher hop ``bench dispatch`` compares the dispatcher with, through the real broker and simulator:
every queued request is read, sent once to Graph and answered by one result record keyed as the request."""

import asyncio
import json
import uuid

import httpx

from bench.dispatch_relay import relay
from bench.relay import create_topics
from broker.producer import AsyncProducer
from stack.launcher import LocalStack
from tests.integration.helpers import BusinessFactory, topic_positions

REQUESTS = 40


async def test_the_relay_sends_each_queued_request_once_and_publishes_its_result(
        stack: LocalStack, producer: AsyncProducer, sim: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    business = await business_factory("relay", throughput=1000)
    run = uuid.uuid4().hex[:8]
    source, target = f"{stack.topic_prefix}test.relay.{run}.requests", f"{stack.topic_prefix}test.relay.{run}.results"
    create_topics(stack.kafka, [source, target], 2)
    sent = {}
    for i in range(REQUESTS):
        message_id, to = f"relay-{run}-{i}", f"3{i:010d}"
        sent[message_id] = to
        request = {"message_id": message_id, "to": to, "message": {"type": "text", "text": {"body": f"r{i}"}}}
        await producer.send(source, json.dumps(request).encode(), f"{business.phone_number_id}:{to}".encode())

    answered, cpu_s = await asyncio.to_thread(
        relay, stack.kafka, source, target, f"{stack.metasim_url}/v23.0/{business.phone_number_id}/messages",
        business.token, REQUESTS, workers=8, connections=4, fetch_wait_ms=20, max_s=60)

    assert answered == REQUESTS
    assert cpu_s > 0
    calls = (await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})).json()["data"]
    accepted = sorted(call["body"]["to"] for call in calls if call["status"] == 200)
    assert accepted == sorted(sent.values())  # each once, none refused
    results = await asyncio.to_thread(topic_positions, stack, target)
    published = {json.loads(value)["message_id"] for _, _, value in results}
    assert len(results) == REQUESTS and published == set(sent)
