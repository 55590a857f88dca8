"""How well a provider answers a knowledge base: the figures a tenant (and the benchmark) decides by.

``evaluate`` asks any provider (semantic, BM25, an OpenAI-compatible model) every labelled
question; a question's label is the answer it should get, or None when it is out of scope (a
person should take it). A reply is correct when it equals the expected answer, normalised. From
the answers and confidences it reports, at a threshold:

* in-scope accuracy: in-scope questions answered (confidence ≥ threshold) and correct / in-scope;
* coverage: in-scope questions answered at all / in-scope;
* precision: correct / answered, over in-scope questions (as in the CLINC150 literature);
  ``precision_all`` also counts the replies sent to out-of-scope questions as wrong;
* out-of-scope recall: out-of-scope questions handed over / out-of-scope;
* top-1 accuracy: in-scope questions whose best reply is correct, whatever the confidence;

and the same across thresholds 0.00-1.00 (the curve), with the latency per question (wall clock, and
the process's CPU time, which other processes on a busy machine do not inflate).

``calibrate`` estimates those figures for a tenant from its own knowledge base alone: each fifth of
the entries is taken out in turn and their questions asked of the rest (an entry whose answer no
remaining entry gives is out of scope for that round), then suggests the lowest threshold whose
expected precision reaches the target (95 %) while handing over at least 80 % of those out-of-scope questions.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ai.knowledge import KnowledgeBase, KnowledgeEntry, normalise
from ai.provider import Provider

CURVE = tuple(round(i * 0.05, 2) for i in range(21))
MAX_QUESTIONS = 500  # per API request; the CLI and the benchmark take any number
TARGET_PRECISION = 0.95
TARGET_OOS_RECALL = 0.8
FOLDS = 5


@dataclass(frozen=True, slots=True)
class Labelled:
    """A question and the answer it should get (None: out of scope, a person should take it)."""

    text: str
    expected: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the provider did with one question."""

    question: Labelled
    reply: str | None
    confidence: float
    latency_ms: float
    cpu_ms: float = 0.0  # the process's CPU time: what other processes on a busy machine do not inflate

    @property
    def correct(self) -> bool:
        return (self.question.expected is not None and self.reply is not None
                and normalise(self.reply) == normalise(self.question.expected))


@dataclass(frozen=True, slots=True)
class Point:
    """The figures at one threshold (None where nothing was there to count)."""

    threshold: float
    in_scope_accuracy: float | None
    coverage: float | None
    precision: float | None
    precision_all: float | None
    oos_recall: float | None


@dataclass(frozen=True, slots=True)
class Report:
    """The figures at ``threshold``, the curve, and counts and latency."""

    provider: str
    threshold: float
    at_threshold: Point
    top1_accuracy: float | None
    in_scope: int
    out_of_scope: int
    p50_ms: float
    p99_ms: float
    p99_cpu_ms: float
    curve: tuple[Point, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def point(outcomes: Sequence[Outcome], threshold: float) -> Point:
    """The figures of ``outcomes`` at ``threshold``."""
    in_scope = [o for o in outcomes if o.question.expected is not None]
    oos = [o for o in outcomes if o.question.expected is None]
    sent_in = [o for o in in_scope if o.reply is not None and o.confidence >= threshold]
    sent_oos = [o for o in oos if o.reply is not None and o.confidence >= threshold]
    correct = sum(o.correct for o in sent_in)
    return Point(
        threshold=threshold,
        in_scope_accuracy=_ratio(correct, len(in_scope)),
        coverage=_ratio(len(sent_in), len(in_scope)),
        precision=_ratio(correct, len(sent_in)),
        precision_all=_ratio(correct, len(sent_in) + len(sent_oos)),
        oos_recall=_ratio(len(oos) - len(sent_oos), len(oos)),
    )


def report(provider: str, outcomes: Sequence[Outcome], threshold: float) -> Report:
    """The report of ``outcomes`` at ``threshold``, with the curve."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    in_scope = [o for o in outcomes if o.question.expected is not None]
    latencies = sorted(o.latency_ms for o in outcomes) or [0.0]
    cpu = sorted(o.cpu_ms for o in outcomes) or [0.0]
    return Report(
        provider=provider,
        threshold=threshold,
        at_threshold=point(outcomes, threshold),
        top1_accuracy=_ratio(sum(o.correct for o in in_scope), len(in_scope)),
        in_scope=len(in_scope),
        out_of_scope=len(outcomes) - len(in_scope),
        p50_ms=round(statistics.median(latencies), 3),
        p99_ms=round(_percentile(latencies, 0.99), 3),
        p99_cpu_ms=round(_percentile(cpu, 0.99), 3),
        curve=tuple(point(outcomes, t) for t in CURVE),
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile of an ordered, non-empty sequence."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def format_report(title: str, result: Report) -> str:
    """The figures at the threshold and the curve, as a text table (the threshold's row marked ``<``)."""
    lines = [f"{title}: {result.in_scope} in-scope and {result.out_of_scope} out-of-scope questions, "
             f"top-1 {_pct(result.top1_accuracy)} %, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms "
             f"(CPU {result.p99_cpu_ms:.2f} ms)",
             f"{'threshold':>10}{'acc %':>8}{'cover %':>9}{'prec %':>8}{'prec all %':>11}{'oos rec %':>10}"]
    for p in result.curve:
        mark = " <" if abs(p.threshold - result.threshold) < 1e-9 else ""
        lines.append(f"{p.threshold:>10.2f}{_pct(p.in_scope_accuracy):>8}{_pct(p.coverage):>9}{_pct(p.precision):>8}"
                     f"{_pct(p.precision_all):>11}{_pct(p.oos_recall):>10}{mark}")
    return "\n".join(lines)


async def ask(provider: Provider, knowledge: Sequence[KnowledgeEntry], questions: Iterable[Labelled]) -> list[Outcome]:
    """Ask ``provider`` every question, one after the other, timing each."""
    outcomes = []
    for question in questions:
        started, cpu = time.perf_counter(), time.process_time()
        answer = await provider.answer(question.text, (), knowledge)
        latency = (time.perf_counter() - started) * 1000.0
        outcomes.append(Outcome(question, answer.reply, answer.confidence, latency,
                                (time.process_time() - cpu) * 1000.0))
    return outcomes


async def evaluate(provider: Provider, knowledge: Sequence[KnowledgeEntry], questions: Iterable[Labelled],
                   *, threshold: float) -> Report:
    """Ask ``provider`` the labelled ``questions`` over ``knowledge`` and report at ``threshold``."""
    return report(provider.name, await ask(provider, knowledge, questions), threshold)


@dataclass(frozen=True, slots=True)
class Calibration:
    """What the tenant's own knowledge base predicts: figures at its threshold and a suggested one."""

    threshold: float
    expected_precision: float | None
    expected_coverage: float | None
    expected_oos_recall: float | None  # questions whose answer was taken out, handed over
    suggested_threshold: float | None
    target_precision: float
    answerable: int
    unanswerable: int
    curve: tuple[Point, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def calibrate(provider: Provider, knowledge: Sequence[KnowledgeEntry], *, threshold: float,
                    target_precision: float = TARGET_PRECISION, folds: int = FOLDS) -> Calibration:
    """Cross-validate ``provider`` on the tenant's own entries (see the module docstring)."""
    entries = list(knowledge)
    tenant = knowledge.tenant_id if isinstance(knowledge, KnowledgeBase) else ""
    outcomes: list[Outcome] = []
    folds = max(2, min(folds, len(entries)))
    for fold in range(folds if len(entries) >= 2 else 0):
        held = entries[fold::folds]
        rest = KnowledgeBase([e for i, e in enumerate(entries) if i % folds != fold],
                             tenant_id=f"{tenant}:calibration:{fold}")
        answers = {normalise(e.answer) for e in rest}
        questions = [Labelled(e.question, e.answer if normalise(e.answer) in answers else None) for e in held]
        outcomes.extend(await ask(provider, rest, questions))
    curve = tuple(point(outcomes, t) for t in CURVE)
    here = point(outcomes, threshold)
    suggested = next((p.threshold for p in curve if p.precision is not None and p.precision >= target_precision
                      and (p.oos_recall is None or p.oos_recall >= TARGET_OOS_RECALL)), None)
    answerable = sum(o.question.expected is not None for o in outcomes)
    return Calibration(threshold, here.precision, here.coverage, here.oos_recall, suggested, target_precision,
                       answerable, len(outcomes) - answerable, curve)
