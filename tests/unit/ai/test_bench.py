"""The scorer benchmark runs and prints its RESULT line (tiny sizes: a smoke test, not a measurement)."""

from __future__ import annotations

import re

import pytest

from ai.bench import NaiveTfIdf, main, questions, synthetic_kb


def test_bench_prints_a_result_line(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--entries", "40", "--queries", "300"])
    out = capsys.readouterr().out
    match = re.search(r"^RESULT scorer queries_per_s=(\d+) p99_us=([\d.]+) baseline_queries_per_s=(\d+) "
                      r"speedup=([\d.]+) build_ms=([\d.]+)$", out, re.MULTILINE)
    assert match, out
    assert int(match.group(1)) > 0 and float(match.group(2)) > 0


def test_synthetic_inputs_are_reproducible() -> None:
    kb = synthetic_kb(50)
    assert len(kb) == 50 and len({e.question for e in kb}) == 50
    assert [e.question for e in synthetic_kb(50)] == [e.question for e in kb]
    assert questions(kb, 20) == questions(kb, 20)


def test_baseline_finds_the_entry_a_question_was_made_from() -> None:
    kb = synthetic_kb(30)
    entry, score = NaiveTfIdf(kb).best(kb[3].question)
    assert entry is not None and entry.question == kb[3].question and 0.5 < score <= 1.0
