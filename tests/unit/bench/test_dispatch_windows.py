"""bench.dispatch's one-second windows over the simulator's arrival times: the busiest one, and those over a limit;
the same on the wire, ``na`` where nothing was captured."""

from __future__ import annotations

from bench.dispatch import Windows, busiest_second, over_limit_windows, windows, wire_over, wire_windows
from bench.wire import Capture


def test_the_busiest_second_counts_a_burst_with_the_calls_that_follow_it() -> None:
    steady = [i / 10 for i in range(30)]  # 10 a second for 3 s
    burst = sorted([*steady, *(1.55 + i / 1000 for i in range(4))])  # four more at 1.55 s
    assert busiest_second(steady) == 10
    assert busiest_second(burst) == 14  # from 1.55 s: the burst, then 1.6 ... 2.5 s
    assert over_limit_windows(burst, 10) > 0 == over_limit_windows(steady, 10)


def test_no_calls_have_no_busiest_second() -> None:
    assert busiest_second([]) == 0


def test_a_runs_windows_and_the_wire_count_of_several_runs() -> None:
    steady = [i / 10 for i in range(30)]
    burst = sorted([*steady, *(1.55 + i / 1000 for i in range(4))])
    assert windows(steady, 10) == Windows(0, 1.0)
    assert windows(burst, 10) == Windows(over_limit_windows(burst, 10), 1.4)
    assert wire_over([windows(burst, 10), windows(steady, 10)]) == str(over_limit_windows(burst, 10))
    assert wire_over([windows(steady, 10), None]) == "na"  # one run not captured: no total
    assert wire_over([]) == "0"


def test_nothing_captured_has_no_wire_windows() -> None:
    assert wire_windows(Capture(), "1555", 10) is None
