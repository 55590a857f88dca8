"""``bench.idle_consumers.slope``: the broker's cost per idle consumer from the steps."""

import math

from bench.idle_consumers import slope


def test_the_slope_of_the_steps_is_the_cost_per_consumer() -> None:
    assert math.isclose(slope([(0, 5.0), (2, 25.0), (4, 45.0), (8, 85.0)]), 10.0)
    assert math.isclose(slope([(0, 0.0), (2, 55.3), (4, 71.3), (8, 114.7)]), 13.40, abs_tol=0.01)


def test_fewer_than_two_counts_have_no_slope() -> None:
    assert math.isnan(slope([(2, 10.0)]))
    assert math.isnan(slope([(2, 10.0), (2, 12.0)]))
