"""projector.templates: a template webhook's time."""

from __future__ import annotations

from datetime import UTC, datetime

from projector.templates import _event_time
from schemas.events import AccountEvent


def _event(entry_time: object) -> AccountEvent:
    return AccountEvent(event_id="e1", phone_number_id="p1", waba_id="w1", field="message_template_status_update",
                        payload={"entry_time": entry_time, "value": {}},
                        received_at=datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC))


def test_a_webhook_is_dated_by_its_entry_time() -> None:
    second = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    assert _event_time(_event(second)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_no_entry_time_falls_back_to_the_arrival() -> None:
    assert _event_time(_event(None)) == datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC)
