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


def test_hop_table_gives_the_window_s_mean_and_quantile_buckets() -> None:
    from bench.e2e import hop_table

    inf = float("inf")
    before = {"router": {0.01: 5.0, 0.025: 10.0, inf: 10.0, -1.0: 0.1}}
    after = {"router": {0.01: 55.0, 0.025: 108.0, inf: 110.0, -1.0: 1.6},  # 100 batches, 1.5 s in all, 2 slow
             "ai": {0.01: 0.0, 0.025: 0.0, inf: 0.0, -1.0: 0.0}}  # nothing in the window: no row
    rows = hop_table(before, after).splitlines()
    assert len(rows) == 2
    assert rows[1].split() == ["router", "100", "15.0", "10.0", "inf"]
