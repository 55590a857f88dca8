"""Losing Redis loses nothing and answers nothing twice: Redis is SIGKILLed and comes back empty under the
live stack; the conversation processor goes on from PostgreSQL's copy of each conversation's state.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from metasim import payloads
from schemas.catalogue import AI_REQUESTS
from stack.launcher import LocalStack
from tests.integration.helpers import BusinessFactory, Poster, customer_writes, rows, scalar, topic_records, wait_for
from tests.integration.test_conversation_flow import (
    KNOWLEDGE,
    Shop,
    _conversation,
    _presence,
    _sent_to,
    _shop,
    _until_state,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _texts(sim: httpx.AsyncClient, shop: Shop, wa_id: str, count: int) -> list[str] | None:
    found = await _sent_to(sim, shop, wa_id)
    return found if len(found) >= count else None


async def _asked(stack: LocalStack, key: str) -> list[str]:
    """The wamids the AI was asked about in ``key``, in order (every record of ``ai.requests``)."""
    values = await asyncio.to_thread(topic_records, stack, AI_REQUESTS.name, idle_s=1.0)
    return [r["message_wamid"] for r in map(json.loads, values) if r.get("conversation_key") == key]  # not: poison


async def _handled(db: AsyncEngine, key: str, wamid: str) -> Any:
    """The durable state's version once the processor handled ``wamid`` in ``key``."""
    return await scalar(db, "SELECT version FROM conversation_state WHERE conversation_key = :k AND "
                            "state ->> 'last_wamid' = :w", k=key, w=wamid)


async def test_after_redis_comes_back_empty_nothing_is_answered_twice_and_people_keep_their_conversations(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack, post: Poster,
        business_factory: BusinessFactory) -> None:
    shop = await _shop(api, db, business_factory)
    await _presence(api, shop, "ann", "online")
    answered, held = "919800000101", "919800000102"
    answered_key, held_key = shop.business.conversation(answered), shop.business.conversation(held)
    question, sent_at = KNOWLEDGE[0][0], int(time.time())
    wamid = await customer_writes(sim, db, shop.business, answered, text=question, timestamp=sent_at)
    assert await wait_for(lambda: _texts(sim, shop, answered, 1), what="the AI's answer") == [KNOWLEDGE[0][1]]
    await customer_writes(sim, db, shop.business, held, text="can you repair my car engine?")
    before = await _until_state(api, shop, held_key, "agent", assignee_id=shop.agents["ann"])
    durable = await wait_for(lambda: scalar(db, "SELECT version FROM conversation_state WHERE conversation_key = :k "
                                                "AND state ->> 'state' = 'agent'", k=held_key),
                             what="the hand-off in PostgreSQL's copy of the state")
    assert durable >= before["version"]

    await asyncio.to_thread(stack.restart_redis, keep_data=False)

    # Meta delivers the answered message again (the router's marks are gone with Redis), then the customer
    # asks something else: the processor reads both in order, from the same partition.
    again = payloads.envelope(shop.business.waba_id, [payloads.messages_change(
        shop.business.phone_number_id, display="15550002222", contacts=[payloads.contact(answered, "Customer")],
        messages=[payloads.text_message(answered, question, wamid=wamid, timestamp=sent_at)])])
    assert (await post(again)).status_code == 200
    second = await customer_writes(sim, db, shop.business, answered, text=KNOWLEDGE[2][0])
    assert await wait_for(lambda: _texts(sim, shop, answered, 2), timeout=90,
                          what="the answer to the new question") == [KNOWLEDGE[0][1], KNOWLEDGE[2][1]]
    assert await _asked(stack, answered_key) == [wamid, second]  # the redelivered message never reached the AI

    # The customer whom ann holds asks what the bot could answer: ann keeps the conversation, the AI stays silent.
    later = await customer_writes(sim, db, shop.business, held, text=KNOWLEDGE[0][0])
    assert await wait_for(lambda: _handled(db, held_key, later), what="the held conversation's message") > durable
    found = await _conversation(api, shop, held_key)
    assert (found["state"], found["assignee_id"]) == ("agent", shop.agents["ann"])
    [state] = await rows(db, "SELECT state ->> 'state' AS s, state ->> 'assignee_id' AS a FROM conversation_state "
                             "WHERE conversation_key = :k", k=held_key)
    assert (state.s, state.a) == ("agent", shop.agents["ann"])
    assert later not in await _asked(stack, held_key) and await _sent_to(sim, shop, held) == []

    # A person moves it on: the change has a new version and a new id, and the projection takes it.
    moved = await api.post(f"/v1/conversations/{held_key}/assign", headers=shop.auth,
                           json={"agent_id": shop.agents["bob"]})
    assert moved.status_code == 202, moved.text
    after = await _until_state(api, shop, held_key, "agent", assignee_id=shop.agents["bob"])
    assert after["version"] > durable
    changes = [r.event_id for r in await rows(
        db, "SELECT event_id FROM conversation_events WHERE tenant_id = :t AND conversation_key = :k AND "
            "kind = 'conversation_changed' ORDER BY id", t=shop.business.tenant_id, k=held_key)]
    assert changes == [f"{held_key}:v{before['version']}", f"{held_key}:v{after['version']}"]

    # The stack is whole again for the tests that follow: presence (the API's Redis) and a new conversation.
    await _presence(api, shop, "ann", "online")
    newcomer = "919800000103"
    await customer_writes(sim, db, shop.business, newcomer, text=KNOWLEDGE[3][0])
    assert await wait_for(lambda: _texts(sim, shop, newcomer, 1), what="a new customer's answer") == [KNOWLEDGE[3][1]]
