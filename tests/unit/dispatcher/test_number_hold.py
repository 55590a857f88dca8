"""How much the dispatcher keeps going at once: a number's requests held by workers (``dispatcher.service.number_hold``)
and Graph calls on the wire (``dispatcher.sender.gate_size``), both sized from Graph's answer time."""

from __future__ import annotations

import pytest

from dispatcher.sender import GATE_MIN, gate_size
from dispatcher.service import BULK_HOLD_MIN, number_hold


@pytest.mark.parametrize(("rate", "answer_s", "held"), [
    (1000, 0.005, 105),  # the simulator's instant answers: the calls on the wire and 0.1 s of slots
    (1000, 0.25, 350),  # Meta's: 250 on the wire
    (1000, 0.6, 500),  # slower still: at most half a second of the rate, for the other numbers' sake
    (80, 0.25, 28),
    (20, 0.005, BULK_HOLD_MIN),  # a slow number still gets a few
])
def test_a_number_holds_its_calls_on_the_wire_and_a_little_more(rate: float, answer_s: float, held: int) -> None:
    assert number_hold(rate, answer_s) == held


@pytest.mark.parametrize(("rate", "answer_s", "connections", "size"), [
    (1000, 0.005, 512, GATE_MIN),  # loopback: 10 would do, the floor stands
    (100, 0.3, 512, 60),  # a gate that binds (100 a second through 30 places at 0.3 s) doubles
    (1000, 0.25, 512, 500),  # Meta's answers at a 1,000 msg/s number's rate
    (3000, 0.25, 512, 512),  # at most the connections
    (1000, 0.005, 16, 16),  # fewer connections than the floor
])
def test_the_calls_on_the_wire_follow_twice_what_the_last_half_second_needed(
        rate: float, answer_s: float, connections: int, size: int) -> None:
    assert gate_size(rate, answer_s, connections) == size
