"""Assignment through Redis: presence, capacity, least-loaded then round robin, team queues, claims."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from agents.assignment import Assigner


async def agents(assigner: Assigner, tenant: str, *specs: tuple[str, int, list[str], str]) -> None:
    for agent_id, capacity, teams, presence in specs:
        await assigner.configure(tenant, agent_id, capacity=capacity, teams=teams)
        await assigner.set_presence(tenant, agent_id, presence, ttl_s=60)


async def test_least_loaded_then_round_robin(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await agents(assigner, uid, ("ann", 3, [], "online"), ("bob", 3, [], "online"))
    picks = [await assigner.pick(uid, f"c{i}") for i in range(4)]
    assert sorted(picks[:2]) == ["ann", "bob"] and sorted(picks[2:]) == ["ann", "bob"]
    assert picks[0] != picks[1] and picks[2] == picks[0]  # round robin among equally loaded agents
    await assigner.release(uid, "bob")
    assert await assigner.pick(uid, "c4") == "bob"  # bob now has fewer open conversations
    assert (await assigner.open_count(uid, "ann"), await assigner.open_count(uid, "bob")) == (2, 2)


async def test_never_an_away_or_offline_or_full_agent(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await agents(assigner, uid, ("away", 5, [], "away"), ("off", 5, [], "offline"), ("full", 1, [], "online"))
    assert await assigner.pick(uid, "c1") == "full"
    assert await assigner.pick(uid, "c2") is None
    assert await assigner.queued(uid) == ["c2"]


async def test_presence_expires_without_heartbeat(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await assigner.configure(uid, "ann", capacity=2, teams=[])
    await assigner.set_presence(uid, "ann", "online", ttl_s=1)
    assert await assigner.presence(uid, "ann") == "online"
    assert 0 < await redis_client.ttl(f"aer:presence:{uid}:ann") <= 1
    await redis_client.pexpire(f"aer:presence:{uid}:ann", 1)
    await redis_client.execute_command("DEBUG", "SLEEP", "0.01")  # the server's clock passes the expiry
    assert await assigner.presence(uid, "ann") == "offline"
    assert await assigner.pick(uid, "c1") is None


async def test_teams_and_their_queues(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await agents(assigner, uid, ("sales1", 1, ["sales"], "online"), ("support1", 1, ["support"], "online"))
    assert await assigner.pick(uid, "c1", team="support") == "support1"
    assert await assigner.pick(uid, "c2", team="support") is None
    assert await assigner.queued(uid, "support") == ["c2"] and await assigner.queued(uid) == []
    assert await assigner.claim(uid, "sales1") is None  # not sales1's team
    await assigner.release(uid, "support1")
    assert await assigner.claim(uid, "support1") == "c2"
    assert await assigner.queued(uid, "support") == []


async def test_claim_takes_the_oldest_waiting_conversation(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await assigner.configure(uid, "ann", capacity=2, teams=["vip"])
    for key, team in (("old", None), ("vip-newer", "vip"), ("newest", None)):
        assert await assigner.pick(uid, key, team=team) is None  # nobody online: all wait
    assert await assigner.claim(uid, "ann") is None  # offline agents claim nothing
    await assigner.set_presence(uid, "ann", "online", ttl_s=60)
    assert await assigner.claim(uid, "ann") == "old"
    assert await assigner.claim(uid, "ann") == "vip-newer"
    assert await assigner.claim(uid, "ann") is None  # full
    assert await assigner.queued(uid) == ["newest"]


async def test_waiting_keeps_its_first_time(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await assigner.configure(uid, "ann", capacity=1, teams=[])
    assert await assigner.pick(uid, "a") is None
    assert await assigner.pick(uid, "b") is None
    assert await assigner.pick(uid, "a") is None  # asked again: keeps its place
    assert await assigner.queued(uid) == ["a", "b"]


async def test_release_never_goes_negative(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await assigner.configure(uid, "ann", capacity=1, teams=[])
    assert await assigner.release(uid, "ann") == 0
    assert await assigner.open_count(uid, "ann") == 0


async def test_concurrent_picks_never_exceed_capacity(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await agents(assigner, uid, ("ann", 5, [], "online"), ("bob", 5, [], "online"))
    picks = await asyncio.gather(*(assigner.pick(uid, f"c{i}") for i in range(30)))
    assert picks.count("ann") == 5 and picks.count("bob") == 5 and picks.count(None) == 20
    assert len(await assigner.queued(uid)) == 20


async def test_unknown_presence_is_refused(redis_client: aioredis.Redis, uid: str) -> None:
    with pytest.raises(ValueError, match="unknown presence"):
        await Assigner(redis_client).set_presence(uid, "ann", "busy", ttl_s=5)


async def test_requeue_restores_the_original_place(redis_client: aioredis.Redis, uid: str) -> None:
    assigner = Assigner(redis_client)
    await assigner.configure(uid, "ann", capacity=1, teams=[])
    assert await assigner.pick(uid, "old") is None
    assert await assigner.pick(uid, "new") is None
    await assigner.set_presence(uid, "ann", "online", ttl_s=60)
    assert await assigner.claim(uid, "ann") == "old"
    since = 1.0  # it had waited since long before "new"
    await assigner.release(uid, "ann")
    await assigner.requeue(uid, "old", None, since)
    assert await assigner.queued(uid) == ["old", "new"]
    assert await assigner.claim(uid, "ann") == "old"
