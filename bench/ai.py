"""``aerostic bench ai``: the default offline provider and BM25 on CLINC150's small split, in one run.

For each provider: the 50-questions-per-intent knowledge base (in-scope accuracy, out-of-scope
recall, precision, coverage at the threshold, per-question latency, the process's resident memory)
and the 5-per-intent one (in-scope accuracy and precision). Prints the curves, then one line each:

    RESULT ai in_scope_acc=… oos_recall=… precision=… coverage=… in_scope_acc_5=… precision_5=… precision_all=…
         p99_ms=… p99_cpu_ms=… rss_mb=…
    RESULT ai_bm25 in_scope_acc=… …
"""

from __future__ import annotations

import asyncio

import psutil

from ai.evaluation import Report, evaluate, format_report
from ai.offline import load_offline
from ai.provider import Provider
from ai.scorer import OfflineScorer
from bench.clinc import load
from schemas.ai import DEFAULT_THRESHOLD


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def print_report(title: str, report: Report) -> None:
    print()
    print(format_report(title, report))


async def _run(label: str, provider: Provider, threshold: float) -> str:
    kb, questions = load()
    full = await evaluate(provider, kb, questions, threshold=threshold)
    print_report(f"{label} ({provider.name}), 50 questions per intent", full)
    rss = psutil.Process().memory_info().rss / 2**20
    kb5, questions5 = load(5)
    small = await evaluate(provider, kb5, questions5, threshold=threshold)
    print_report(f"{label} ({provider.name}), 5 questions per intent", small)
    at, at5 = full.at_threshold, small.at_threshold
    return (f"RESULT {label} in_scope_acc={_pct(at.in_scope_accuracy)} oos_recall={_pct(at.oos_recall)} "
            f"precision={_pct(at.precision)} coverage={_pct(at.coverage)} "
            f"in_scope_acc_5={_pct(at5.in_scope_accuracy)} precision_5={_pct(at5.precision)} "
            f"precision_all={_pct(at.precision_all)} p99_ms={full.p99_ms:.1f} p99_cpu_ms={full.p99_cpu_ms:.1f} "
            f"rss_mb={rss:.0f}")


def main(threshold: float = DEFAULT_THRESHOLD) -> int:
    """Run both providers and print their RESULT lines; 0."""
    lexical = OfflineScorer()
    default, status = load_offline(lexical)
    print(f"default offline provider: {status.provider} ({status.reason}); threshold {threshold:.2f}")
    lines = [asyncio.run(_run("ai", default, threshold))]
    lines.append(asyncio.run(_run("ai_bm25", lexical, threshold)))
    print()
    for line in lines:
        print(line)
    return 0
