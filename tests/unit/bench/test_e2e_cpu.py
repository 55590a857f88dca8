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


def test_a_steps_cpu_puts_the_broker_apart_from_the_rest_and_leaves_the_load_out() -> None:
    from bench.e2e import step_cpu

    before = {"kafka": 1.0, "streams": 2.0, "metasim": 1.0, "loadgen": 1.0, "relay-metasim": 0.0}
    after = {"kafka": 3.0, "streams": 3.0, "metasim": 9.0, "loadgen": 9.0, "relay-metasim": 9.0}  # 500 questions
    line = step_cpu(before, after, 500, 4.0, 1234)
    assert line.split() == ["cpu:", "broker", "4.0", "ms/q", "(50%", "of", "its", "thread),", "the", "rest", "2.0",
                            "ms/q,", "after", "1234", "questions"]


def test_the_relays_floor_leaves_out_the_load_and_the_pipelines_idle_consumers() -> None:
    from bench.e2e import relay_floor

    before = {"kafka": 1.0, "relay-send": 1.0, "relay-ingress": 0.0, "loadgen": 1.0, "relay-metasim": 0.0}
    after = {"kafka": 2.0, "relay-send": 1.2, "relay-ingress": 0.1, "loadgen": 5.0, "relay-metasim": 3.0}
    # 200 questions over 5 s; the pipeline's idle consumers cost the broker 100 ms a second meanwhile (500 ms)
    floor = relay_floor(before, after, 200, 5.0, 100.0)
    assert floor == pytest.approx({"kafka": 2.5, "relay-send": 1.0, "relay-ingress": 0.5})
    assert relay_floor(before, {**after, "kafka": 1.1}, 200, 5.0, 100.0)["kafka"] == 0.0  # never below nothing
    assert relay_floor(before, after, 0, 5.0, 100.0) == {}


def _burn(cpu_s: float) -> None:
    from bench.e2e import own_cpu_s

    until = own_cpu_s() + cpu_s
    while own_cpu_s() < until:
        sum(range(10_000))


def test_the_load_generators_figure_leaves_the_benchs_own_measuring_out() -> None:
    from types import SimpleNamespace

    from bench.e2e import cpu_seconds, measuring

    stack = SimpleNamespace(children={}, services={}, metrics_ports={})  # no process to read: only this one
    first = cpu_seconds(stack)["loadgen"]  # type: ignore[arg-type]
    with measuring():  # a scrape's worth of CPU
        _burn(0.2)
    measured = cpu_seconds(stack)["loadgen"]  # type: ignore[arg-type]
    _burn(0.2)  # the load's own
    loaded = cpu_seconds(stack)["loadgen"]  # type: ignore[arg-type]
    assert measured - first < 0.05
    assert loaded - measured > 0.15
