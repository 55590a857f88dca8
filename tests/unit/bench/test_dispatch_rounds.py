"""``aerostic bench dispatch``'s limits-off rounds: the ceiling and the dispatcher in turn, the first alternating."""

import bench.dispatch as dispatch


def test_the_ceiling_and_the_dispatcher_take_turns_going_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    order: list[str] = []

    def ceiling(_bench: object, count: int, *, workers: int, connections: int) -> tuple[float, float]:
        order.append(f"ceiling {workers}/{connections}")
        return 4000.0 + len(order), 0.2

    def dispatcher(_bench: object, count: int) -> tuple[float, float]:
        order.append("dispatcher")
        return 2000.0, 0.5

    monkeypatch.setattr(dispatch, "measure_ceiling", ceiling)
    monkeypatch.setattr(dispatch, "measure_max", dispatcher)
    rounds = dispatch.limits_off_rounds(object(), 100, (256, 32), rounds=3)  # type: ignore[arg-type]
    assert order == ["ceiling 256/32", "dispatcher", "dispatcher", "ceiling 256/32", "ceiling 256/32", "dispatcher"]
    assert rounds == [(4001.0, 0.2, 2000.0, 0.5), (4004.0, 0.2, 2000.0, 0.5), (4005.0, 0.2, 2000.0, 0.5)]
