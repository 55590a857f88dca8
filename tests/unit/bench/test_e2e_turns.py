"""bench.e2e's steps in turn: the relay's and the pipeline's at each rate back to back, the first alternating."""

from dataclasses import dataclass, field

from bench.e2e import Side, step_through
from bench.steps import Step

FAR = float("inf")


@dataclass
class FakeRun:
    rate: int
    passed: bool

    def step(self) -> Step:
        p99 = 100.0 if self.passed else 900.0
        return Step(rate=self.rate, asked=self.rate, sent=self.rate, errors=0, lost=0, duplicated=0,
                    achieved_rate=float(self.rate), p50_ms=50.0, p99_ms=p99)


@dataclass
class FakeSim:
    """Passes every rate up to ``limit``; records the order of the steps in ``log``."""

    name: str
    limit: int
    log: list[str]
    customers: int = 0

    async def run(self, rate: int, seconds: float, drain_s: float) -> FakeRun:
        self.log.append(f"{self.name}@{rate}")
        return FakeRun(rate, rate <= self.limit)


@dataclass
class Calls:
    log: list[str] = field(default_factory=list)

    def hook(self, what: str):  # type: ignore[no-untyped-def]
        return lambda: self.log.append(what)


def side(name: str, limit: int, log: list[str], calls: Calls) -> Side:
    return Side(name, FakeSim(name, limit, log), dict, wake=calls.hook(f"wake {name}"),  # type: ignore[arg-type]
                rest=calls.hook(f"rest {name}"), done=calls.hook(f"done {name}"))


def test_each_rate_runs_both_back_to_back_the_first_alternating_until_each_fails() -> None:
    log: list[str] = []
    calls = Calls()
    relay, pipeline = side("relay", 50, log, calls), side("pipeline", 25, log, calls)
    step_through([relay, pipeline], [10, 25, 50, 75, 100], 1.0, 1.0, FAR)
    assert log == ["relay@10", "pipeline@10", "pipeline@25", "relay@25", "relay@50", "pipeline@50", "relay@75"]
    assert [s.rate for s in relay.steps] == [10, 25, 50, 75]
    assert [s.passed for s in pipeline.steps] == [True, True, False]
    assert calls.log.count("done relay") == 1 and calls.log[-1] == "done relay"  # stopped after its failing step
    assert calls.log.count("done pipeline") == 1
    assert calls.log[:2] == ["wake relay", "rest relay"]  # woken for its step, rested while the pipeline steps


def test_each_step_waits_for_the_stack_at_rest_first() -> None:
    log: list[str] = []
    calls = Calls()
    quiet: list[int] = []

    def settle() -> float:
        quiet.append(len(log))
        return 0.0

    pipeline = side("pipeline", 1000, log, calls)
    step_through([pipeline], [10, 25], 1.0, 1.0, FAR, settle)
    assert quiet == [0, 1]  # before each step, after the one before


def test_the_time_budget_stops_both() -> None:
    log: list[str] = []
    calls = Calls()
    step_through([side("relay", 1000, log, calls), side("pipeline", 1000, log, calls)], [10, 25], 5.0, 10.0, 0.0)
    assert log == []
