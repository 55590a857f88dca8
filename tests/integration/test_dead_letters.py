"""The stream runtime sets aside a record that fails on its own and goes on; waits out a service that is down
without leaving its group or dead-lettering; and ``aerostic dlq`` lists, shows and replays what it set aside.

Runs a ``StreamWorker`` in the test process with its own topic prefix (its own topics and group ids on the
shared broker), so the processor can be made to fail on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from confluent_kafka import Message
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.dead_letters import read_letters
from broker.producer import AsyncProducer
from broker.runtime import Output, StreamWorker
from config.settings import CoreSettings
from metasim import payloads
from schemas.catalogue import (
    AI_GROUP,
    AI_REQUESTS,
    DISPATCHER_GROUP,
    INBOUND,
    OUTBOUND_INTERACTIVE,
    PROJECTOR_GROUP,
    ROUTER_GROUP,
    STATUSES,
    WEBHOOKS_RAW,
)
from schemas.dead_letter import DeadLetter
from stack.launcher import LocalStack
from stack.topics import create_topics
from tests.integration.helpers import PLATFORM_KEY, Poster, TenantFactory, scalar, wait_for


class Flaky:
    """A processor that copies records on, fails on ``poison`` and on ``down`` while ``outage`` lasts."""

    group_id = ROUTER_GROUP

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.topics = [WEBHOOKS_RAW.full_name(prefix)]
        self.handled: list[bytes] = []
        self.outage = 0  # how many more attempts fail as if Redis were unreachable
        self.poisoned = True
        self._batch: list[bytes] = []

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        values = [m.value() or b"" for m in batch]
        if b"poison" in values and self.poisoned:
            raise ValueError("a value no code expected")
        if self.outage > 0:
            self.outage -= 1
            raise ConnectionRefusedError("redis is down")
        self._batch = values
        return [Output(INBOUND.full_name(self.prefix), b"k", v) for v in values]

    async def saved(self) -> None:
        self.handled.extend(self._batch)


@pytest.fixture
async def worker(stack: LocalStack) -> AsyncIterator[tuple[StreamWorker, Flaky, CoreSettings]]:
    prefix = f"dl{uuid.uuid4().hex[:8]}."
    await asyncio.to_thread(create_topics, stack.kafka, prefix)
    settings = CoreSettings(environment="test", kafka_bootstrap_servers=stack.kafka, database_url=stack.database_url,
                            redis_url=stack.redis_url, topic_prefix=prefix)
    processor = Flaky(prefix)
    async with AsyncProducer(stack.kafka) as producer:
        runner = StreamWorker(processor, producer, settings, batch_size=50, batch_wait_s=0.05)
        task = asyncio.create_task(runner.run())
        yield runner, processor, settings
        runner.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


async def _produce(stack: LocalStack, topic: str, values: list[bytes]) -> None:
    async with AsyncProducer(stack.kafka) as producer:
        for value in values:  # one at a time: in order, in one partition
            await producer.send(topic, value, b"same-key")


def _cli(settings: CoreSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "AEROSTIC_TOPIC_PREFIX": settings.topic_prefix, "AEROSTIC_ENVIRONMENT": "test"}
    return subprocess.run([sys.executable, "-m", "aerostic", "dlq", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


async def test_a_poison_record_is_set_aside_and_the_rest_goes_on(
        stack: LocalStack, worker: tuple[StreamWorker, Flaky, CoreSettings]) -> None:
    runner, processor, settings = worker
    values = [b"a", b"b", b"poison", b"c", b"d"]
    await _produce(stack, WEBHOOKS_RAW.full_name(settings.topic_prefix), values)

    async def everything_else() -> bool:
        return sorted(processor.handled) == [b"a", b"b", b"c", b"d"] and runner.dead_lettered == 1

    await wait_for(everything_else, timeout=60, what="every other record handled, one dead letter")
    letters = await asyncio.to_thread(read_letters, settings, ROUTER_GROUP)
    assert len(letters) == 1
    offset, letter = letters[0]
    assert (letter.value, letter.key, letter.group) == (b"poison", b"same-key", ROUTER_GROUP)
    assert letter.source_topic == WEBHOOKS_RAW.full_name(settings.topic_prefix)
    assert (letter.error_type, letter.error) == ("ValueError", "a value no code expected")

    listed = await asyncio.to_thread(_cli, settings, "list", ROUTER_GROUP)
    assert listed.returncode == 0, listed.stderr
    assert f"{ROUTER_GROUP}: 1 dead letter" in listed.stdout and "ValueError" in listed.stdout
    shown = await asyncio.to_thread(_cli, settings, "show", ROUTER_GROUP, str(offset))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["value"] == "poison"

    processor.poisoned = False  # the fix
    replayed = await asyncio.to_thread(_cli, settings, "replay", ROUTER_GROUP, "--offset", str(offset))
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 dead letter" in replayed.stdout
    await wait_for(lambda: asyncio.sleep(0, b"poison" in processor.handled), timeout=60, what="the replayed record")
    assert runner.dead_lettered == 1
    assert sorted(processor.handled) == [b"a", b"b", b"c", b"d", b"poison"]


async def test_a_service_outage_is_waited_out_not_dead_lettered(
        stack: LocalStack, worker: tuple[StreamWorker, Flaky, CoreSettings]) -> None:
    runner, processor, settings = worker
    processor.outage = 5  # back-off 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s with every partition paused
    await _produce(stack, WEBHOOKS_RAW.full_name(settings.topic_prefix), [b"x", b"y"])
    await wait_for(lambda: asyncio.sleep(0, sorted(processor.handled) == [b"x", b"y"]), timeout=60,
                   what="the records after the outage")
    assert processor.outage == 0
    assert runner.dead_lettered == 0
    await _produce(stack, WEBHOOKS_RAW.full_name(settings.topic_prefix), [b"z"])  # the partitions were resumed
    await wait_for(lambda: asyncio.sleep(0, b"z" in processor.handled), timeout=60, what="a record after resuming")
    assert await asyncio.to_thread(read_letters, settings, ROUTER_GROUP) == []


async def test_one_unreadable_change_is_dead_lettered_and_the_message_beside_it_stored(
        stack: LocalStack, settings: CoreSettings, tenant_factory: TenantFactory, post: Poster,
        db: AsyncEngine) -> None:
    tenant = await tenant_factory("half-readable")
    wamid = payloads.new_wamid()
    body = payloads.customer_text(tenant.phone_number_id, tenant.waba_id, "15557770000", "still here", wamid=wamid)
    broken = {"field": "account_update", "value": {"ban_info": {"waba_ban_state": wamid}}}  # no "event"
    body["entry"][0]["changes"].append(broken)
    assert (await post(body)).status_code == 200

    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND wamid = :w",
                                  t=tenant.tenant_id, w=wamid), what="the readable message in PostgreSQL")

    async def letter() -> list[DeadLetter]:
        letters = await asyncio.to_thread(read_letters, settings, ROUTER_GROUP)
        return [ltr for _, ltr in letters if wamid.encode() in ltr.value]

    [found] = await wait_for(letter, what="the unreadable change in the router's dead letters")
    assert found.where == "entry[0].changes[1]"
    assert json.loads(found.value) == broken
    assert "event" in found.error


async def test_the_operator_sees_dead_letters_per_group(
        stack: LocalStack, settings: CoreSettings, producer: AsyncProducer, http: httpx.AsyncClient) -> None:
    marker = uuid.uuid4().hex
    await producer.send(STATUSES.name, f'{{"not a status": "{marker}"}}'.encode(), b"some:key")

    async def letter() -> list[DeadLetter]:
        letters = await asyncio.to_thread(read_letters, settings, PROJECTOR_GROUP)
        return [ltr for _, ltr in letters if marker.encode() in ltr.value]

    [found] = await wait_for(letter, what="the projector's dead letter")
    assert found.source_topic == STATUSES.name and found.error_type == "ValueError"

    async def reported() -> dict[str, Any] | None:
        response = await http.get("/admin/dead-letters", params={"group": PROJECTOR_GROUP, "limit": 200},
                                  headers={"Authorization": f"Bearer {PLATFORM_KEY}"})
        assert response.status_code == 200, response.text
        body = dict(response.json())
        mine = [d for d in body["latest"] if d["offset"] == found.offset and d["source_topic"] == STATUSES.name]
        return body if mine else None

    report = await wait_for(reported, what="the dead letter in the operator's view")
    assert set(report["counts"]) >= {ROUTER_GROUP, PROJECTOR_GROUP} and report["counts"][PROJECTOR_GROUP] >= 1
    refused = await http.get("/admin/dead-letters", headers={"Authorization": "Bearer not-the-platform-key"})
    assert refused.status_code == 401


@pytest.mark.parametrize(("topic", "group"), [(OUTBOUND_INTERACTIVE.name, DISPATCHER_GROUP),
                                              (AI_REQUESTS.name, AI_GROUP)])
async def test_the_out_of_order_consumers_set_aside_what_they_cannot_read(
        settings: CoreSettings, producer: AsyncProducer, topic: str, group: str) -> None:
    marker = uuid.uuid4().hex
    await producer.send(topic, f'{{"unreadable": "{marker}"}}'.encode(), b"some:key")

    async def letter() -> list[DeadLetter]:
        letters = await asyncio.to_thread(read_letters, settings, group)
        return [ltr for _, ltr in letters if marker.encode() in ltr.value]

    [found] = await wait_for(letter, what=f"the dead letter of {group}")
    assert (found.source_topic, found.error_type, found.key) == (topic, "ValidationError", b"some:key")
