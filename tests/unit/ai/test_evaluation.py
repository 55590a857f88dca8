"""The evaluation harness: its figures on a small labelled set computed by hand, calibration, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from aerostic.cli import main as cli_main
from ai.evaluation import CURVE, Labelled, calibrate, evaluate, point
from ai.knowledge import KnowledgeBase, KnowledgeEntry
from ai.openai_provider import OpenAIProvider
from ai.provider import Answer
from schemas.ai import Turn
from tests.unit.ai.chat_server import ChatServer, decision


class Scripted:
    """A provider that answers each question as scripted, and records the knowledge it was given."""

    name = "scripted"

    def __init__(self, script: dict[str, tuple[str | None, float]]) -> None:
        self.script = script
        self.seen: dict[str, list[str]] = {}

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        self.seen[question] = [e.question for e in knowledge]
        reply, confidence = self.script[question]
        return Answer(reply, confidence, "scripted")

    async def aclose(self) -> None:
        return None


SCRIPT = {
    "q1": ("A.", 0.9),  # correct (punctuation aside), sent at 0.5
    "q2": ("A", 0.8),  # wrong, sent at 0.5
    "q3": ("B", 0.4),  # correct, held back at 0.5
    "q4": (None, 0.0),  # no reply at all
    "q5": ("A", 0.6),  # out of scope, answered at 0.5
    "q6": ("B", 0.3),  # out of scope, handed over at 0.5
}
LABELS = [Labelled("q1", "a"), Labelled("q2", "B"), Labelled("q3", "B"), Labelled("q4", "C"),
          Labelled("q5", None), Labelled("q6", None)]
KB = KnowledgeBase([KnowledgeEntry(id="1", question="x", answer="A")], tenant_id="t")


async def test_the_figures_are_those_computed_by_hand() -> None:
    report = await evaluate(Scripted(SCRIPT), KB, LABELS, threshold=0.5)
    at = report.at_threshold
    # In scope: q1-q4. Sent at 0.5: q1 (right), q2 (wrong); q5 (out of scope) sent too, q6 handed over.
    assert (report.in_scope, report.out_of_scope) == (4, 2)
    assert at.in_scope_accuracy == pytest.approx(1 / 4)
    assert at.coverage == pytest.approx(2 / 4)
    assert at.precision == pytest.approx(1 / 2)
    assert at.precision_all == pytest.approx(1 / 3)
    assert at.oos_recall == pytest.approx(1 / 2)
    assert report.top1_accuracy == pytest.approx(2 / 4)  # q1 and q3, whatever the confidence
    curve = {p.threshold: p for p in report.curve}
    assert tuple(curve) == CURVE and len(CURVE) == 21
    assert (curve[0.35].in_scope_accuracy, curve[0.35].coverage, curve[0.35].precision) == pytest.approx(
        (2 / 4, 3 / 4, 2 / 3))
    assert curve[0.0].coverage == pytest.approx(3 / 4) and curve[0.0].oos_recall == 0.0  # q4 has no reply
    assert (curve[0.95].in_scope_accuracy, curve[0.95].coverage, curve[0.95].precision,
            curve[0.95].oos_recall) == (0.0, 0.0, None, 1.0)
    assert report.p99_ms >= report.p50_ms >= 0.0


def test_nothing_to_count_is_none_not_zero() -> None:
    empty = point([], 0.7)
    assert (empty.in_scope_accuracy, empty.precision, empty.oos_recall) == (None, None, None)


async def test_a_threshold_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        await evaluate(Scripted(SCRIPT), KB, LABELS, threshold=1.5)


async def test_calibration_asks_each_entry_of_the_others_and_suggests_a_threshold() -> None:
    kb = KnowledgeBase([
        KnowledgeEntry(id="ship", question="how long does shipping take", answer="X"),
        KnowledgeEntry(id="parcel", question="when will my parcel arrive", answer="X"),
        KnowledgeEntry(id="hours", question="what are your opening hours", answer="Y"),
    ], tenant_id="shop")
    provider = Scripted({"how long does shipping take": ("X", 0.9),  # answerable (parcel stays), right
                         "when will my parcel arrive": ("Y", 0.8),  # answerable (ship stays), wrong
                         "what are your opening hours": ("X", 0.75)})  # its answer Y is gone: out of scope
    result = await calibrate(provider, kb, threshold=0.7)
    assert provider.seen["what are your opening hours"] == ["how long does shipping take",
                                                           "when will my parcel arrive"]  # never itself
    assert (result.answerable, result.unanswerable) == (2, 1)
    assert (result.expected_precision, result.expected_coverage, result.expected_oos_recall) == (0.5, 1.0, 0.0)
    # At 0.85 only the right answer is sent and the out-of-scope one is handed over.
    assert result.suggested_threshold == 0.85
    assert len(result.curve) == len(CURVE)


async def test_calibration_of_a_base_too_small_says_nothing() -> None:
    result = await calibrate(Scripted({}), KB, threshold=0.7)
    assert (result.expected_precision, result.suggested_threshold, result.answerable) == (None, None, 0)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    knowledge = tmp_path / "kb.json"
    knowledge.write_text(json.dumps([
        {"question": "How long does shipping take?", "answer": "3 to 5 days."},
        {"question": "What are your opening hours?", "answer": "9 to 5.", "keywords": ["open"]},
    ]))
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps([
        {"text": "how long does shipping take", "answer": "3 to 5 days."},
        {"text": "what are your opening hours?", "answer": "9 to 5."},
        {"text": "can you fix my car engine?", "answer": None},
    ]))
    return knowledge, questions


def test_the_cli_evaluates_files_and_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    knowledge, questions = _files(tmp_path)
    assert cli_main(["eval", "ai", "--knowledge", str(knowledge), "--questions", str(questions),
                     "--provider", "lexical", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["provider"] == "offline" and (report["in_scope"], report["out_of_scope"]) == (2, 1)
    assert report["at_threshold"]["in_scope_accuracy"] == 1.0 and report["at_threshold"]["oos_recall"] == 1.0


def test_the_cli_names_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    knowledge, _ = _files(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"answer": "no text"}]')
    assert cli_main(["eval", "ai", "--knowledge", str(knowledge), "--questions", str(broken)]) == 2
    assert "broken.json" in capsys.readouterr().err


async def test_the_openai_provider_is_evaluated_against_a_chat_server(
        chat: ChatServer, make_provider: Callable[..., OpenAIProvider]) -> None:
    chat.script.append(decision("3 to 5 days.", 0.9, "shipping entry"))
    chat.script.append(decision("We fix cars.", 0.8, "made up"))
    kb = KnowledgeBase([KnowledgeEntry(id="s", question="How long does shipping take?", answer="3 to 5 days.")])
    report = await evaluate(make_provider(), kb, [Labelled("when does it arrive?", "3 to 5 days."),
                                                  Labelled("can you fix my car?", None)], threshold=0.7)
    assert report.provider == "openai" and len(chat.received) == 2
    assert (report.at_threshold.in_scope_accuracy, report.at_threshold.oos_recall) == (1.0, 0.0)
