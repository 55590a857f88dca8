"""The live feed's cursor: a compact, exact encoding of a position in every partition, refused when foreign."""

from __future__ import annotations

import pytest

from api.live.cursor import MAX_CURSOR_CHARS, Layout
from api.live.events import author_of, decode, visible

LAYOUT = Layout.of({"wa.inbound": 6, "wa.statuses": 6, "outbound.results": 6, "conversations.events": 6,
                    "campaigns.progress": 3, "agents.presence": 3})


@pytest.mark.parametrize("offsets", [
    (0,) * 30,
    tuple(range(30)),
    tuple(127 + i for i in range(30)),
    tuple(2**21 + i * 1_000_003 for i in range(30)),
    tuple([2**62] + [0] * 29),
])
def test_offsets_round_trip(offsets: tuple[int, ...]) -> None:
    cursor = LAYOUT.encode(offsets)
    assert LAYOUT.decode(cursor) == offsets
    assert cursor.isascii() and "=" not in cursor and "+" not in cursor and "/" not in cursor


def test_it_is_compact() -> None:
    assert len(LAYOUT.encode(tuple(1_500_000 + i for i in range(30)))) <= 4 * (3 + 30 * 3) // 3 + 1


def test_every_process_agrees_on_the_layout() -> None:
    shuffled = Layout.of({"agents.presence": 3, "wa.statuses": 6, "campaigns.progress": 3, "wa.inbound": 6,
                          "conversations.events": 6, "outbound.results": 6})
    assert shuffled.slots == LAYOUT.slots
    assert shuffled.decode(LAYOUT.encode(tuple(range(30)))) == tuple(range(30))


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "!!!!", "AQ", "x" * (MAX_CURSOR_CHARS + 1)])
def test_malformed_cursors_are_refused(cursor: str) -> None:
    assert LAYOUT.decode(cursor) is None


def test_a_cursor_of_another_layout_is_refused() -> None:
    grown = Layout.of({"wa.inbound": 12, "wa.statuses": 6, "outbound.results": 6, "conversations.events": 6,
                       "campaigns.progress": 3, "agents.presence": 3})
    assert grown.decode(LAYOUT.encode((5,) * 30)) is None


def test_truncated_and_padded_cursors_are_refused() -> None:
    cursor = LAYOUT.encode(tuple(300 + i for i in range(30)))
    assert LAYOUT.decode(cursor[:-3]) is None
    assert LAYOUT.decode(LAYOUT.encode((1,) * 30) + "AQ") is None


def test_wrong_lengths_and_negative_offsets_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        LAYOUT.encode((0,) * 29)
    with pytest.raises(ValueError):
        LAYOUT.encode((-1,) + (0,) * 29)


@pytest.mark.parametrize(("requested_by", "expected"), [
    ("user:u1", ("agent", "u1", None)), ("automation:r9", ("rule", "r9", None)),
    ("ai:offline", ("ai", "ai:offline", None)), ("campaign:c7", ("campaign", "campaign:c7", "c7")),
    ("api_key:k1", ("api", "api_key:k1", None)), ("", ("api", "", None)),
])
def test_the_author_of_a_queued_message(requested_by: str, expected: tuple[str, str, str | None]) -> None:
    assert author_of(requested_by) == expected


def test_records_without_a_tenant_or_json_are_skipped() -> None:
    assert decode("wa.inbound", b"k", b"not json") is None
    assert decode("wa.inbound", b"k", b'{"wamid": "w"}') is None
    assert decode("wa.inbound", b"k", None) is None
    assert decode("conversations.events", b"k", b'{"tenant_id": "t", "kind": "rule_executed"}') is None


def test_a_local_failure_names_its_message() -> None:
    event = decode("wa.statuses", b"p:w", b'{"tenant_id": "t", "wamid": "local.m1", "status": "failed",'
                                         b' "error_code": -1, "error_title": "outside_service_window"}')
    assert event is not None and event.type == "message.status"
    assert event.data["message_id"] == "m1" and event.data["error_code"] == -1


def test_an_ambiguous_failure_and_metas_statuses_carry_the_sends_key() -> None:
    result = decode("outbound.results", b"p:w", b'{"tenant_id": "t", "message_id": "m1", "idempotency_key": "k1",'
                                                b' "outcome": "failed", "ambiguous": true, "wamid": null}')
    status = decode("wa.statuses", b"p:w", b'{"tenant_id": "t", "wamid": "wamid.X", "status": "delivered",'
                                           b' "biz_opaque_callback_data": "k1"}')
    assert result is not None and status is not None
    assert (result.data["key"], result.data["ambiguous"], result.data["wamid"]) == ("k1", True, None)
    assert (status.data["key"], status.data["wamid"], status.data["status"]) == ("k1", "wamid.X", "delivered")


def test_agents_see_no_campaigns() -> None:
    assert visible("campaign", "admin") and not visible("campaign", "agent")
    assert all(visible(t, "agent") for t in ("message.in", "message.out", "message.status", "conversation",
                                             "contact", "ai", "presence"))
