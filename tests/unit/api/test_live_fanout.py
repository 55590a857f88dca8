"""The live feed's fan-out: bounded queues that cut a slow browser off, tenant and role filters, the ring and
exact resumes."""

from __future__ import annotations

import asyncio

import pytest

from api.live.cursor import Layout
from api.live.fanout import Batch, Client, Entry, Ping, Ring, batches, fan_out
from api.live.hub import SLICE, LiveHub
from config.settings import IngressSettings

LAYOUT = Layout.of({"a": 2})


def entry(slot: int, offset: int, vector: tuple[int, ...], tenant: str = "t1", type_: str = "presence") -> Entry:
    return Entry.build(slot, offset, tenant, type_, vector, LAYOUT.encode(vector),
                       b'{"type":"' + type_.encode() + b'","at":"x","conversation_key":null,"data":{}}')


def batch(before: tuple[int, ...], *entries: Entry, seq: int = 1) -> Batch:
    return Batch.of(seq, before, entries[-1].vector, entries)


@pytest.mark.asyncio
async def test_a_full_queue_cuts_that_client_only() -> None:
    slow = Client(LAYOUT, "t1", "admin", (0, 0), max_queue=6)
    fast = Client(LAYOUT, "t1", "admin", (0, 0), max_queue=10)
    first = batch((0, 0), *(entry(0, i, (i + 1, 0)) for i in range(4)))
    second = batch((4, 0), *(entry(0, i, (i + 1, 0)) for i in range(4, 7)))
    assert fan_out(first, [slow, fast]) == []
    cut = fan_out(second, [slow, fast])  # 4 + 3 events waiting: past the slow one's 6
    assert cut == [slow] and slow.cut.is_set() and "slow client" in slow.cut_reason
    assert slow.waiting == 4 and fast.waiting == 7 and not fast.cut.is_set()
    assert not slow.offer(Ping((0, 0)))  # a cut client takes nothing more
    assert [len(i.entries) for i in fast.take() if isinstance(i, Batch)] == [4, 3] and fast.waiting == 0


def test_a_hand_over_is_one_batch_per_tenant_and_role_built_once() -> None:
    got = batches(1, (0, 0), (2, 1), [entry(0, 0, (1, 0), type_="campaign"), entry(0, 1, (2, 0)),
                                      entry(1, 0, (2, 1), tenant="t2")])
    assert [e.offset for e in got[("t1", True)].entries] == [0, 1]
    assert [e.type for e in got[("t1", False)].entries] == ["presence"]  # agents never see campaigns
    assert got[("t2", True)] is got[("t2", False)]  # nothing admin-only: one batch, one join, for both roles
    assert got[("t1", True)].frames == b"".join(e.frame for e in got[("t1", True)].entries)
    assert batches(1, (0, 0), (1, 0), [entry(0, 0, (1, 0), type_="campaign")]).keys() == {("t1", True)}


def test_a_synced_stream_takes_a_batch_s_joined_frames_and_the_last_cursor() -> None:
    client = Client(LAYOUT, "t1", "admin", (0, 0), 10)
    first = batch((0, 0), entry(0, 0, (1, 0)), entry(1, 0, (1, 1)))
    assert client.render(first) == first.frames and client.pos == (1, 1) and client.synced and client.below == 1
    assert client.render(Ping((3, 1))) is not None and client.pos == (3, 1)  # the feed moved on elsewhere
    second = batch((3, 1), entry(0, 3, (4, 1)), seq=2)
    assert client.render(second) is second.frames and client.pos == (4, 1) and client.below == 2


def test_a_resumed_stream_renders_a_batch_entry_by_entry() -> None:
    client = Client(LAYOUT, "t1", "admin", (1, 9), 10)  # delivered offset 0 already; ahead in slot 1
    got = client.render(batch((0, 0), entry(0, 0, (1, 0)), entry(0, 1, (2, 4))))
    assert got is not None and LAYOUT.encode((2, 9)).encode() in got and client.pos == (2, 9)
    assert b'"id":"' + LAYOUT.encode((1, 0)).encode() not in got  # the overlap is skipped
    assert client.below == -1  # still ahead of the feed in slot 1: every batch is rendered entry by entry
    assert client.render(batch((0, 0), entry(0, 0, (1, 0)), seq=2)) is None
    caught_up = batch((2, 9), entry(1, 9, (2, 10)), seq=3)
    assert client.render(caught_up) == caught_up.frames and client.below == 3


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
    agents = [hub.register("t1", "agent", None) for _ in range(2)]
    hub._apply([entry(0, 0, (1, 0))], (1, 0))
    assert sum(c.waiting for c in clients + agents) == SLICE  # the first slice at once, the rest on later turns
    hub._apply([entry(0, 1, (2, 0)), entry(0, 2, (3, 0), type_="campaign")], (3, 0))
    hub._deliver(Ping(hub.position), clients + agents)
    for _ in range(20):  # one slice per loop turn: the batches' slices, then the heartbeat's
        await asyncio.sleep(0)
    assert not hub._backlog
    for client in clients:
        got = client.take()
        assert [type(g).__name__ for g in got] == ["Batch", "Batch", "Ping"]
        assert [[e.offset for e in g.entries] for g in got if isinstance(g, Batch)] == [[0], [1, 2]]
    for agent in agents:
        got = agent.take()
        assert [[e.offset for e in g.entries] for g in got if isinstance(g, Batch)] == [[0], [1]]
        assert b"".join(f for f in map(agent.render, got) if f is not None).count(b"data: ") == 2
