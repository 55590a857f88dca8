"""The campaign funnel's batch write: a batch's facts split into rounds for its one multi-row UPDATE."""

from __future__ import annotations

from datetime import UTC, datetime

from campaigns.states import FAILED_OVERRIDES_BELOW, RANK
from campaigns.states import RecipientState as R
from streams.campaign_funnel import ADVANCE_FIELDS, CampaignFunnel, rounds

AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _fact(moves: list[tuple[object, ...]], campaign: str, contact: str, state: R, *, wamid: str | None = None,
          code: int | None = None, title: str | None = None) -> None:
    CampaignFunnel._add((campaign, contact), state, AT, moves, wamid=wamid, mid=None, amb=False, code=code,
                        title=title)


def test_each_round_names_a_recipient_once_and_keeps_its_facts_in_order() -> None:
    moves: list[tuple[object, ...]] = []
    _fact(moves, "c1", "a", R.SUBMITTED, wamid="w1")
    _fact(moves, "c1", "b", R.SUBMITTED)
    _fact(moves, "c1", "a", R.DELIVERED)
    _fact(moves, "c2", "a", R.SENT)  # another campaign's recipient of the same contact
    _fact(moves, "c1", "a", R.FAILED, code=131049, title="x" * 400)
    split = rounds(moves)
    assert [list(zip(r["c"], r["k"], strict=True)) for r in split] == [
        [("c1", "a"), ("c1", "b"), ("c2", "a")], [("c1", "a")], [("c1", "a")]]
    assert split[0]["state"] == ["submitted", "submitted", "sent"] and split[0]["wamid"] == ["w1", None, None]
    assert split[1]["state"] == ["delivered"] and split[1]["below"] == [RANK[R.DELIVERED]]
    assert split[2]["state"] == ["failed"] and split[2]["below"] == [FAILED_OVERRIDES_BELOW]
    assert split[2]["code"] == [131049] and split[2]["title"] == ["x" * 300]
    assert all(set(r) == set(ADVANCE_FIELDS) and len({len(column) for column in r.values()}) == 1 for r in split)


def test_a_failure_code_is_kept_only_with_the_failure() -> None:
    moves: list[tuple[object, ...]] = []
    _fact(moves, "c1", "a", R.SENT, code=1, title="ignored")
    (only,) = rounds(moves)
    assert only["code"] == [None] and only["title"] == [None] and only["at"] == [AT]


def test_no_facts_no_rounds() -> None:
    assert rounds([]) == []
