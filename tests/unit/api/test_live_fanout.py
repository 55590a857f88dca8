"""The live feed's fan-out: bounded queues that cut a slow browser off, tenant and role filters, the ring and
exact resumes."""

from __future__ import annotations

import asyncio

import pytest

from api.live.cursor import Layout
from api.live.fanout import Client, Entry, Ping, Ring, fan_out
from api.live.hub import SLICE, LiveHub
from config.settings import IngressSettings

LAYOUT = Layout.of({"a": 2})


def entry(slot: int, offset: int, vector: tuple[int, ...], tenant: str = "t1", type_: str = "presence") -> Entry:
    return Entry.build(slot, offset, tenant, type_, vector, LAYOUT.encode(vector),
                       b'{"type":"' + type_.encode() + b'","at":"x","conversation_key":null,"data":{}}')


@pytest.mark.asyncio
async def test_a_full_queue_cuts_that_client_only() -> None:
    slow = Client(LAYOUT, "t1", "admin", (0, 0), max_queue=3)
    fast = Client(LAYOUT, "t1", "admin", (0, 0), max_queue=10)
    batch = [entry(0, i, (i + 1, 0)) for i in range(5)]
    cut = fan_out(batch, [slow, fast])
    assert cut == [slow] and slow.cut.is_set() and "slow client" in slow.cut_reason
    assert slow.queue.qsize() == 3 and fast.queue.qsize() == 5 and not fast.cut.is_set()
    assert not slow.offer(batch[0])  # a cut client takes nothing more


@pytest.mark.asyncio
async def test_tenants_and_roles_filter_what_is_queued() -> None:
    admin = Client(LAYOUT, "t1", "admin", (0, 0), 10)
    agent = Client(LAYOUT, "t1", "agent", (0, 0), 10)
    other = Client(LAYOUT, "t2", "admin", (0, 0), 10)
    fan_out([entry(0, 0, (1, 0), type_="campaign"), entry(0, 1, (2, 0)), entry(1, 0, (2, 1), tenant="t2")],
            [admin, agent, other])
    assert admin.queue.qsize() == 2 and agent.queue.qsize() == 1 and other.queue.qsize() == 1
    queued = await agent.queue.get()
    assert isinstance(queued, Entry) and queued.type == "presence"


def test_a_resume_skips_what_was_delivered_and_frames_carry_the_cursor() -> None:
    client = Client(LAYOUT, "t1", "admin", (2, 0), 10)
    assert client.render(entry(0, 1, (2, 0))) is None  # below its cursor: delivered before
    frame = client.render(entry(0, 2, (3, 0)))
    assert frame is not None and frame.startswith(b"id: " + LAYOUT.encode((3, 0)).encode() + b"\ndata: {\"id\":")
    assert client.pos == (3, 0)


def test_a_cursor_ahead_in_another_slot_is_never_moved_back() -> None:
    client = Client(LAYOUT, "t1", "admin", (0, 9), 10)  # resumed from a process further along in slot 1
    frame = client.render(entry(0, 0, (1, 4)))
    assert frame is not None and client.pos == (1, 9)
    assert LAYOUT.encode((1, 9)).encode() in frame


def test_a_ping_moves_a_quiet_stream_forward() -> None:
    client = Client(LAYOUT, "t1", "admin", (0, 0), 10)
    assert client.render(Ping((5, 7))) == b": ping\nid: " + LAYOUT.encode((5, 7)).encode() + b"\n\n"
    assert client.render(Ping((5, 7))) == b": ping\n\n"


def test_the_ring_is_bounded_and_knows_its_floor() -> None:
    ring = Ring(3, (0, 0))
    for i in range(5):
        ring.append(entry(0, i, (i + 1, 0)))
    assert [e.offset for e in ring.entries] == [2, 3, 4]
    assert ring.floor == [2, 0]
    assert ring.covers((2, 0)) and not ring.covers((1, 0))
    assert ring.gap((0, 0)) == 2
    reader = Client(LAYOUT, "t1", "admin", (3, 0), 10)
    assert [e.offset for e in ring.since(reader, (3, 0))] == [3, 4]


def test_queue_bound_is_checked_without_a_loop_running() -> None:
    async def check() -> None:
        client = Client(LAYOUT, "t1", "admin", (0, 0), 1)
        assert client.offer(Ping((0, 0))) and not client.offer(Ping((0, 0)))
    asyncio.run(check())


@pytest.mark.asyncio
async def test_the_hub_serves_streams_a_slice_per_loop_iteration_in_feed_order() -> None:
    hub = LiveHub(IngressSettings(environment="test", live_max_per_tenant=1000))
    hub.layout, hub.position = LAYOUT, (0, 0)
    clients = [hub.register("t1", "admin", None) for _ in range(SLICE * 3 + 5)]
    hub._apply([entry(0, 0, (1, 0))], (1, 0))
    assert sum(c.queue.qsize() for c in clients) == SLICE  # the first slice at once, the rest on later turns
    hub._apply([entry(0, 1, (2, 0))], (2, 0))
    hub._deliver(Ping(hub.position), clients)
    for _ in range(20):  # one slice per loop turn: 2 x (3 + 1) slices of entries, then the heartbeat's
        await asyncio.sleep(0)
    assert not hub._backlog
    for client in clients:
        got = [client.queue.get_nowait() for _ in range(3)]
        assert [type(g).__name__ for g in got] == ["Entry", "Entry", "Ping"]
        assert [g.offset for g in got if isinstance(g, Entry)] == [0, 1]
