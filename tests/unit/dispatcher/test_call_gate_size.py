"""dispatcher.sender.gate_size: the Graph calls the dispatcher lets on the wire at once, sized from Graph's answer
time and the calls that came to the gate (or were answered) in the last half second."""

from __future__ import annotations

import pytest

from dispatcher.sender import GATE_MIN, gate_size


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
