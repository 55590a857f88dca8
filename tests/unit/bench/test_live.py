"""``bench live``'s figures: the webhook p99 with streams against a control run's in the same phase."""

import math

from bench.live import against_control


def test_the_ratio_is_taken_against_the_controls_same_phase_not_its_first() -> None:
    ratio, drift = against_control(16.0, {"idle": 6.0, "one": 8.5, "clients": 13.0})
    assert ratio == 16.0 / 13.0
    assert drift == 13.0 / 6.0


def test_without_a_control_there_is_no_ratio() -> None:
    ratio, drift = against_control(16.0, {})
    assert math.isnan(ratio) and math.isnan(drift)
    ratio, _ = against_control(16.0, {"idle": 6.0, "clients": math.nan})
    assert math.isnan(ratio)
