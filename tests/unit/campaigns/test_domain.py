"""Campaign rules: transitions, recipient ranks, variables, schedule and quiet hours, cost, funnel."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from pydantic import ValidationError

from campaigns.cost import DEFAULT_RATES, estimate, parse_rates, rate
from campaigns.funnel import funnel
from campaigns.schedule import QuietHours, Schedule
from campaigns.states import RecipientState as R
from campaigns.states import TransitionError, advances, transition
from campaigns.variables import MissingVariable, VariableSource, resolve


def test_transitions() -> None:
    assert transition("draft", "launch") == "running"
    assert transition("running", "pause") == "paused"
    assert transition("paused", "resume") == "running"
    assert transition("paused", "cancel") == "cancelled"
    for current, command in [("completed", "resume"), ("cancelled", "launch"), ("running", "resume"),
                             ("draft", "pause")]:
        with pytest.raises(TransitionError):
            transition(current, command)


def test_recipient_states_only_advance() -> None:
    assert advances(R.QUEUED, R.SUBMITTED) and advances(R.SUBMITTED, R.READ) and advances(R.READ, R.REPLIED)
    assert not advances(R.READ, R.DELIVERED) and not advances(R.REPLIED, R.READ)
    assert advances(R.SENT, R.FAILED) and advances(R.QUEUED, R.FAILED)
    assert not advances(R.DELIVERED, R.FAILED)
    assert not advances(R.FAILED, R.DELIVERED) and not advances(R.SKIPPED, R.SUBMITTED)


def test_variables_from_fields_attributes_columns_and_defaults() -> None:
    mapping = {"body.1": VariableSource(source="attribute:first_name", default="there"),
               "body.2": VariableSource(source="column:city"), "header": VariableSource(source="text:Sale"),
               "body.3": VariableSource(source="wa_id")}
    contact = {"wa_id": "447700900123", "attributes": {"first_name": " Ann "}}
    assert resolve(mapping, contact, {"city": "Leeds"}) == {"body.1": "Ann", "body.2": "Leeds", "header": "Sale",
                                                            "body.3": "447700900123"}
    assert resolve(mapping, {"wa_id": "1"}, {"city": "X"})["body.1"] == "there"
    with pytest.raises(MissingVariable, match="city"):
        resolve(mapping, contact, {})
    with pytest.raises(ValidationError):
        VariableSource(source="cookie:x")


def test_schedule_time_zone_and_quiet_hours() -> None:
    schedule = Schedule(send_at=datetime(2026, 3, 1, 9, 0), timezone="Asia/Kolkata",
                        quiet_hours=QuietHours(start=time(21, 0), end=time(9, 0)))
    assert schedule.start_utc() == datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
    night = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # 22:30 in Kolkata
    assert schedule.next_allowed(night) == datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
    early = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # 06:30 in Kolkata
    assert schedule.next_allowed(early) == datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
    day = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    assert schedule.next_allowed(day) == day
    with pytest.raises(ValidationError, match="time zone"):
        Schedule(timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        QuietHours(start=time(9), end=time(9))


def test_cost_by_category_and_country() -> None:
    assert rate(DEFAULT_RATES, "MARKETING", "447700900123") == DEFAULT_RATES["marketing"]["44"]
    assert rate(DEFAULT_RATES, "marketing", "999123") == DEFAULT_RATES["marketing"]["*"]
    table = parse_rates('{"utility": {"44": 0.5, "*": 1}}')
    result = estimate(table, "utility", ["447700900123", "447700900124", "15551234567"])
    assert result["total"] == 2.0 and result["recipients"] == 3
    assert result["by_rate"] == [{"rate": 0.5, "recipients": 2}, {"rate": 1.0, "recipients": 1}]


def test_funnel_is_cumulative_and_split() -> None:
    counts = [("read", None, 3), ("delivered", None, 2), ("replied", None, 1), ("skipped", "opted_out", 4),
              ("skipped", "duplicate", 1), ("failed", "131049", 2), ("queued", "portfolio_budget", 5),
              ("submitted", None, 1)]
    f = funnel(counts)
    assert f["targeted"] == 19 and f["skipped"] == 5
    assert f["skipped_by_reason"] == {"opted_out": 4, "duplicate": 1}
    assert f["sent"] == 6 and f["delivered"] == 6 and f["read"] == 4 and f["replied"] == 1
    assert f["failed_by_code"] == {"131049": 2} and f["waiting_by_reason"] == {"portfolio_budget": 5}
    assert f["submitted"] == 9


def test_csv_audience_rows_with_invalid_and_duplicate() -> None:
    from campaigns.audience import CsvError, contact_key, parse_csv

    text = "\ufeffName,Phone,City\nAnn,+44 7911 123456,Leeds\nBob,not a number,York\n\nAnn again,447911123456,X\n" \
           "Cy,+91 98765-43210,Pune\n"
    rows = parse_csv(text, "phone")
    assert [(r.line, r.wa_id, r.problem) for r in rows] == [
        (2, "447911123456", None), (3, None, "invalid_number"), (5, "447911123456", "duplicate"),
        (6, "919876543210", None)]
    assert rows[0].columns == {"Name": "Ann", "City": "Leeds"}
    assert [contact_key(r) for r in rows] == ["447911123456", "line:3", "line:5", "919876543210"]
    with pytest.raises(CsvError, match="no column"):
        parse_csv("a,b\n1,2\n", "phone")
    with pytest.raises(CsvError, match="header"):
        parse_csv("", "phone")
