"""api.console.whatsapp: how each connection state reads on the console."""

from __future__ import annotations

from typing import Any

import pytest

from api.connection import Attempt, ConnectionView, Number
from api.console.whatsapp import (
    CONNECT,
    LABELS,
    RECONNECT,
    as_json,
    numbers_of,
    script_labels,
    status_of,
)


def view(state: str, **attempt: Any) -> dict[str, Any]:
    return {"state": state, "attempt": attempt or None, "accounts": [], "numbers": []}


@pytest.mark.parametrize(("state", "text", "button"), [
    ("not_connected", "Not connected", CONNECT),
    ("pending", "Connecting…", CONNECT),
    ("connected", "WhatsApp connected", RECONNECT),
    ("needs_reauth", "Reconnect needed", RECONNECT),
    ("disconnected", "Disconnected by Meta — reconnect", RECONNECT),
])
def test_each_state_has_its_words(state: str, text: str, button: str) -> None:
    status = status_of(view(state))
    assert (status.state, status.text, status.connect_label) == (state, text, button)
    assert status.step is None and status.error is None


def test_a_failed_attempt_names_the_step_and_metas_message() -> None:
    status = status_of(view("failed", attempt_id="a1", status="failed", step="exchange", error_code=100,
                            error_message="Invalid verification code format."))
    assert status.text == "Connection failed: exchange: Invalid verification code format."
    assert (status.step, status.error, status.connect_label) == ("exchange", "Invalid verification code format.",
                                                                 CONNECT)


def test_a_failure_without_details_still_reads_well() -> None:
    assert status_of(view("failed", attempt_id="a1", status="failed")).text == "Connection failed: no details"
    assert status_of({"state": "failed", "attempt": None}).text == "Connection failed: no details"


def test_an_attempt_not_yet_recorded_is_pending_whatever_the_view_says() -> None:
    assert status_of(view("not_connected"), awaiting=True).text == "Connecting…"
    assert status_of(view("connected"), awaiting=True).state == "pending"


def test_an_unknown_state_is_shown_rather_than_hidden() -> None:
    assert status_of(view("paused_by_meta")).text == "Paused by meta"
    assert status_of({}).text == "Not connected"


def test_the_endpoints_model_and_its_json_read_alike() -> None:
    model = ConnectionView(
        state="failed", accounts=[],
        attempt=Attempt(attempt_id="a1", status="failed", step="wabas", error_code=None, error_message="none granted",
                        requested_at=None, finished_at=None),
        numbers=[Number(phone_number_id="111", waba_id="222", display_phone_number="+1 555-0100",
                        verified_name="Acme", quality_rating="GREEN", messaging_limit_tier="TIER_1K",
                        throughput_mps=80, status="connected")])
    as_dict = as_json(model)
    assert as_json(as_dict) == as_dict
    assert status_of(as_dict).text == "Connection failed: wabas: none granted"
    assert numbers_of(as_dict) == [{"phone_number_id": "111", "waba_id": "222", "display_phone_number": "+1 555-0100",
                                    "verified_name": "Acme", "quality_rating": "GREEN",
                                    "messaging_limit_tier": "TIER_1K", "throughput_mps": 80, "status": "connected"}]
    with pytest.raises(TypeError):
        as_json(["not", "a", "view"])


def test_the_script_gets_the_servers_words() -> None:
    labels = script_labels()
    assert labels["states"] == LABELS
    assert (labels["connect"], labels["reconnect"]) == (CONNECT, RECONNECT)
    assert set(labels["reconnect_states"]) == {"connected", "needs_reauth", "disconnected"}
