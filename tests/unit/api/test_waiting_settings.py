"""``/v1/settings/waiting``'s request model: the schedule's checks and what is stored."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.canned_response_models import CannedResponseCreate
from api.settings_models import WaitingSettingsUpdate


@pytest.mark.parametrize(("hours", "reason"), [
    ({"mon": [["10:00", "09:00"]]}, "ends before it starts"),
    ({"mon": [["09:00", "09:00"]]}, "ends before it starts"),
    ({"mon": [["09:00", "12:00"], ["11:59", "13:00"]]}, "overlaps"),
    ({"mon": [["14:00", "15:00"], ["09:00", "10:00"]]}, "overlaps or comes before"),
    ({"mon": [["09:00", "24:00"]]}, "pattern"),
    ({"mon": [[f"0{h}:00", f"0{h}:30"] for h in range(1, 6)]}, "at most 4"),
    ({"someday": [["09:00", "10:00"]]}, "someday"),
])
def test_a_bad_schedule_is_refused_with_its_reason(hours: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        WaitingSettingsUpdate.model_validate({"hours": hours})


def test_ranges_touching_midnight_and_whole_days_are_accepted_and_empty_days_not_stored() -> None:
    body = WaitingSettingsUpdate.model_validate({"timezone": "America/New_York", "hours": {
        "mon": [["00:00", "00:00"]], "tue": [["09:00", "12:00"], ["12:00", "00:00"]], "wed": []}})
    assert body.stored_hours() == {"mon": [["00:00", "00:00"]], "tue": [["09:00", "12:00"], ["12:00", "00:00"]]}
    assert body.replies().acknowledge and body.replies().ai_answers_while_waiting


def test_unknown_zone_and_texts_out_of_bounds_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Moon/Base'"):
        WaitingSettingsUpdate.model_validate({"timezone": "Moon/Base"})
    for text in ("", "   ", "x" * 1025):
        with pytest.raises(ValidationError):
            WaitingSettingsUpdate.model_validate({"in_hours_text": text})
    assert WaitingSettingsUpdate.model_validate({"in_hours_text": "x" * 1024}).in_hours_text == "x" * 1024


@pytest.mark.parametrize("shortcut", ["Hello", "-a", "_a", "a b", "a" * 33, "", "é"])
def test_a_bad_shortcut_is_refused(shortcut: str) -> None:
    with pytest.raises(ValidationError):
        CannedResponseCreate(shortcut=shortcut, text="x")


def test_good_shortcuts_and_text_bounds() -> None:
    for shortcut in ("a", "0", "help-desk", "refund_policy", "a" * 32):
        assert CannedResponseCreate(shortcut=shortcut, text="x").shortcut == shortcut
    with pytest.raises(ValidationError):
        CannedResponseCreate(shortcut="ok", text="x" * 4097)
