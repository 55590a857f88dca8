"""``aerostic bench ingress``'s report: alternated rounds, one ratio each, medians on the RESULT line."""

from bench.ingress import Measurement, report
from bench.loadgen import LoadResult


def measured(name: str, rps: float, p99_ms: float = 10.0) -> Measurement:
    return Measurement(name, LoadResult(ok=round(rps * 5), errors=0, duration=5.0, p50_ms=p99_ms / 2, p99_ms=p99_ms,
                                        cpu_seconds=1.0), {"server": 100.0})


def result_fields(text: str) -> dict[str, str]:
    line = text.splitlines()[-1]
    assert line.startswith("RESULT ingress ")
    return dict(field.split("=", 1) for field in line.split()[2:])


def test_the_ratio_is_the_median_of_each_rounds_own_ratio() -> None:
    # A fast spell in the second round: comparing medians of the servers' rates would give 12,000 / 24,000 = 0.5.
    pairs = [(measured("bare", 20_000), measured("aerostic ingress", 8_000)),
             (measured("bare", 30_000), measured("aerostic ingress", 15_000)),
             (measured("bare", 24_000), measured("aerostic ingress", 12_000))]
    fields = result_fields(report(pairs, 64, 5.0))
    assert fields["ratio"] == "0.500"
    assert fields["ratios"] == "0.400,0.500,0.500"
    assert fields["rounds"] == "3"
    assert fields["rps"] == "12000"
    assert fields["ceiling_rps"] == "24000"


def test_every_round_has_its_rows_and_p99_is_the_rounds_median() -> None:
    pairs = [(measured("bare", 20_000), measured("aerostic ingress", 10_000, p99_ms=30.0)),
             (measured("bare", 20_000), measured("aerostic ingress", 10_000, p99_ms=9.0)),
             (measured("bare", 20_000), measured("aerostic ingress", 10_000, p99_ms=11.0))]
    text = report(pairs, 64, 5.0)
    assert sum(1 for line in text.splitlines() if line.startswith("aerostic ingress ")) == 3
    assert result_fields(text)["p99_ms"] == "11.00"


def test_which_server_is_loaded_first_alternates_from_round_to_round(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    from types import SimpleNamespace

    import bench.ingress as ingress

    order: list[str] = []

    def measure(name: str, *_args: object, **_kwargs: object) -> Measurement:
        order.append(name)
        return measured(name, 10_000.0 if name == "bare uvicorn" else 4_000.0)

    server = SimpleNamespace(pid=1)
    monkeypatch.setattr(ingress, "measure", measure)
    monkeypatch.setattr(ingress, "start_bare", lambda *_: server)
    monkeypatch.setattr(ingress, "start_ingress", lambda *_: server)
    monkeypatch.setattr(ingress, "running", contextlib.nullcontext)
    broker = SimpleNamespace(url="", child=server)
    pairs = ingress.bench_rounds(tmp_path, broker, "s", [], 1, 1.0, 3)  # type: ignore[arg-type]
    assert order == ["bare uvicorn", "aerostic ingress", "aerostic ingress", "bare uvicorn", "bare uvicorn",
                     "aerostic ingress"]
    assert [(c.name, a.name) for c, a in pairs] == [("bare uvicorn", "aerostic ingress")] * 3  # (ceiling, ingress)
