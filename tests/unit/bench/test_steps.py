"""Stepped-rate benchmarks: a step's verdict, the sustained rate, when to stop, the load generator's bound."""

import itertools
import math

from bench.steps import (
    DEFAULT_RATES,
    TARGET_P99_MS,
    Step,
    in_flight_cap,
    percentile,
    pool_size,
    should_continue,
    sustained,
)


def step(rate: int, *, achieved: float | None = None, p99: float = 100.0, lost: int = 0, errors: int = 0,
         sent: int | None = None) -> Step:
    asked = rate * 5
    return Step(rate=rate, asked=asked, sent=asked if sent is None else sent, errors=errors, lost=lost + errors,
                duplicated=0, achieved_rate=rate if achieved is None else achieved, p50_ms=p99 / 2, p99_ms=p99)


def test_a_step_that_held_the_rate_within_the_target_passes() -> None:
    assert step(100, p99=TARGET_P99_MS).passed
    assert step(100, achieved=91).verdict() == "ok"


def test_a_slow_p99_fails_and_says_why() -> None:
    slow = step(100, p99=TARGET_P99_MS + 0.1)
    assert not slow.passed and not slow.overloaded
    assert slow.verdict() == "p99"


def test_falling_behind_the_rate_is_overload_even_when_fast() -> None:
    behind = step(500, achieved=300, p99=40)
    assert behind.overloaded and not behind.passed
    assert behind.verdict() == "overloaded"


def test_failed_sends_are_overload_and_lost() -> None:
    failing = step(1000, errors=3, p99=40)
    assert failing.overloaded and failing.lost == 3
    assert failing.verdict() == "overloaded+lost"


def test_no_answer_at_all_fails_on_p99() -> None:
    silent = step(50, lost=250, sent=250, p99=float("nan"))
    assert not silent.passed
    assert silent.verdict() == "lost+p99"


def test_sustained_is_the_last_pass_before_the_first_failure() -> None:
    steps = [step(10), step(25), step(50, p99=400), step(100)]
    assert sustained(steps) == 25
    assert sustained([step(10, lost=1)]) == 0
    assert sustained([]) == 0


def test_stepping_stops_after_the_first_failure() -> None:
    assert should_continue([step(10), step(25)])
    assert not should_continue([step(10), step(25, achieved=10)])


def test_in_flight_cap_covers_one_timeout_of_sends_within_bounds() -> None:
    assert in_flight_cap(1) == 16
    assert in_flight_cap(100) == 1000
    assert in_flight_cap(1000) == 4000
    assert in_flight_cap(100, timeout_s=2.0) == 200


def test_pool_size_grows_with_the_rate_within_bounds() -> None:
    assert pool_size(10) == 8
    assert pool_size(500) == 32
    assert pool_size(1000) == 63
    assert pool_size(5000) == 64


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_top_frames_counts_each_stacks_leaf() -> None:
    from bench.profile import top_frames

    raw = ("<module> (a.py:1);run (b.py:2);select (selectors.py:9) 60\n"
           "<module> (a.py:1);run (b.py:2);encode (c.py:3) 30\n"
           "<module> (a.py:1);other (d.py:4);select (selectors.py:9) 10\n"
           "not a line\n")
    assert top_frames(raw, 2) == [("select (selectors.py:9)", 70, 0.7), ("encode (c.py:3)", 30, 0.3)]
    assert top_frames("") == []


def test_the_default_steps_reach_1000_per_second_at_most_half_again_apart_from_50_and_a_third_from_150() -> None:
    assert DEFAULT_RATES[-1] >= 1000 and list(DEFAULT_RATES) == sorted(set(DEFAULT_RATES))
    assert all(b <= 1.5 * a for a, b in itertools.pairwise(DEFAULT_RATES) if a >= 50)
    assert all(3 * b <= 4 * a for a, b in itertools.pairwise(DEFAULT_RATES) if a >= 150)
