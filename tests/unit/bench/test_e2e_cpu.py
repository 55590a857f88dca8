"""bench.e2e's CPU figures: per second at rest, per question under load, and the table that puts them side by side."""

import pytest

from bench.e2e import cpu_per_question, cpu_per_second, cpu_table


def test_rest_and_load_figures_side_by_side_largest_first() -> None:
    before, rested, after = {"kafka": 1.0, "streams": 2.0}, {"kafka": 3.0, "streams": 2.2}, {"kafka": 7.0,
                                                                                               "streams": 10.2}
    idle = cpu_per_second(before, rested, 10.0)
    assert idle == pytest.approx({"kafka": 200.0, "streams": 20.0})
    per_question = cpu_per_question(rested, after, 400)
    assert per_question == pytest.approx({"kafka": 10.0, "streams": 20.0})
    rows = cpu_table(idle, per_question, 40).splitlines()
    assert rows[1].split() == ["streams", "20.0", "20.0", "0.5"]
    assert rows[2].split() == ["kafka", "200.0", "10.0", "5.0"]
    assert cpu_per_second(before, rested, 0.0) == {}
