"""The projector's merge of a message's facts: the same facts give the same status in any order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from projector.merge import Fact, Merged, merge, message_wamid, verdict_fact

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def meta(status: str, seconds: float, code: int | None = None) -> Fact:
    return Fact(status, at(seconds), code, "Message undeliverable" if code else None, "gone" if code else None)


def in_every_order(facts: list[Fact]) -> Merged:
    results = {merge(order) for order in itertools.permutations(facts)}
    assert len(results) == 1, results
    return results.pop()


def test_nothing_known_is_no_status() -> None:
    assert merge([]) == Merged(None, None, None, None, None, frozenset())


def test_statuses_only_move_forward() -> None:
    got = in_every_order([meta("read", 3), meta("sent", 1), meta("delivered", 2)])
    assert (got.status, got.at, got.applied) == ("read", at(3), {"sent", "delivered", "read"})


def test_a_read_reported_earlier_than_a_delivered_still_wins() -> None:
    got = in_every_order([meta("read", 1), meta("delivered", 2)])
    assert (got.status, got.applied) == ("read", {"read"})


def test_failed_after_sent_is_terminal_and_keeps_its_error() -> None:
    got = in_every_order([meta("sent", 1), meta("failed", 2, 131026), meta("delivered", 3), meta("read", 4)])
    assert (got.status, got.at, got.error_code, got.error_title, got.error_details) == (
        "failed", at(2), 131026, "Message undeliverable", "gone")
    assert got.applied == {"sent", "failed"}


def test_failed_after_read_stays_in_the_history_only() -> None:
    got = in_every_order([meta("read", 1), meta("failed", 2, 131026)])
    assert (got.status, got.error_code, got.applied) == ("read", None, {"read"})


def test_a_failed_that_ties_with_delivered_contradicts_it() -> None:
    got = in_every_order([meta("sent", 1), meta("delivered", 2), meta("failed", 2, 131026)])
    assert (got.status, got.error_code) == ("delivered", None)


def test_failed_beats_sent_of_the_same_second() -> None:
    got = in_every_order([meta("failed", 1, 131026), meta("sent", 1)])
    assert (got.status, got.error_code) == ("failed", 131026)


def test_unknown_statuses_never_become_the_status() -> None:
    got = in_every_order([meta("deleted", 5), meta("sent", 1)])
    assert (got.status, got.applied) == ("sent", {"sent"})
    assert merge([meta("warning", 1)]).status is None


def verdict(outcome: str, seconds: float = 0.5, **fields: object) -> dict[str, object]:
    return {"outcome": outcome, "wamid": "wamid.A", "error_code": None, "error_title": None, "error_details": None,
            "ambiguous": False, "completed_at": at(seconds).isoformat(), **fields}


def test_an_accepted_result_is_the_status_until_meta_reports() -> None:
    alone = merge([verdict_fact(verdict("accepted"), meta_reported=False)])
    assert (alone.status, alone.at, alone.applied) == ("accepted", at(0.5), frozenset())
    got = in_every_order([verdict_fact(verdict("accepted"), meta_reported=True), meta("sent", 1)])
    assert (got.status, got.applied) == ("sent", {"sent"})


def test_meta_failing_an_accepted_message_wins_even_with_an_earlier_timestamp() -> None:
    got = in_every_order([verdict_fact(verdict("accepted", 1.5), meta_reported=True), meta("failed", 1, 131026)])
    assert (got.status, got.error_code) == ("failed", 131026)


def test_a_failed_result_carries_its_error() -> None:
    fact = verdict_fact(verdict("failed", wamid=None, error_code=132001, error_title="template missing",
                                error_details="no such template"), meta_reported=False)
    got = merge([fact])
    assert (got.status, got.error_code, got.error_title, got.error_details) == (
        "failed", 132001, "template missing", "no such template")


@pytest.mark.parametrize("reported", [True, False])
def test_an_ambiguous_failure_yields_to_meta_statuses(reported: bool) -> None:
    fact = verdict_fact(verdict("failed", wamid=None, ambiguous=True, error_title="ambiguous_outcome: timeout"),
                        meta_reported=reported)
    assert fact.status == ("accepted" if reported else "failed")


def test_a_local_failure_and_its_status_agree_and_the_status_is_applied() -> None:
    local = dict(wamid="local.m1", error_code=-1, error_title="outside_service_window", error_details="template")
    status = Fact("failed", at(0.5), -1, "outside_service_window", "template")
    got = in_every_order([verdict_fact(verdict("failed", 0.5, **local), meta_reported=True), status])
    assert (got.status, got.error_code, got.applied) == ("failed", -1, {"failed"})


def test_the_message_wamid_is_the_results_else_the_least_reported() -> None:
    assert message_wamid("wamid.B", {"wamid.A"}) == "wamid.B"
    assert message_wamid(None, {"wamid.C", "wamid.A"}) == "wamid.A"
    assert message_wamid(None, set()) is None
