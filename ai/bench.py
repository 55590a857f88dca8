"""Benchmark of the offline scorer: ``python -m ai.bench [--entries 200] [--queries 5000]``.

Builds a synthetic knowledge base of a few hundred shop entries (deterministic), then scores
paraphrased and unrelated questions with ``OfflineScorer.score`` (tokenising, BM25, confidence
and ambiguity: the whole path a request takes) and, in the same run, with a naive baseline: a
pure-Python TF-IDF cosine that scans every entry for every question, over the same tokens.
Prints a table and one line:

    RESULT scorer queries_per_s=… p99_us=… baseline_queries_per_s=… speedup=… build_ms=…
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence

from ai.knowledge import KnowledgeBase, KnowledgeEntry, tokenize
from ai.scorer import OfflineScorer

_THINGS = (
    "order parcel jacket shoes dress voucher gift card account password invoice receipt subscription "
    "newsletter delivery return refund exchange warranty repair size colour stock price discount "
    "coupon payment transfer instalment store pickup locker courier address label"
).split()
_ACTIONS = (
    "track cancel change return exchange pay reset update download find use activate redeem "
    "book collect send repair split confirm delete"
).split()
_CONTEXTS = (
    "online", "in store", "abroad", "on sale", "after thirty days", "without a receipt", "as a guest",
    "on weekends", "with paypal", "by phone", "before shipping", "for a gift", "at checkout", "in bulk",
)
_FILLERS = "hi hello please quickly today urgently again somehow maybe".split()
_UNKNOWN = "zebra piano volcano bicycle meteor tractor carburettor saxophone glacier".split()


def synthetic_kb(entries: int, *, seed: int = 7) -> KnowledgeBase:
    """``entries`` distinct question/answer pairs about a shop, with keywords, reproducibly."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    made: list[KnowledgeEntry] = []
    seen: set[tuple[str, str, str]] = set()
    while len(made) < entries:
        action, thing = rng.choice(_ACTIONS), rng.choice(_THINGS)
        context = " ".join(rng.sample(_CONTEXTS, 2))
        if (action, thing, context) in seen:
            continue
        seen.add((action, thing, context))
        made.append(KnowledgeEntry(
            id=f"e{len(made)}",
            question=f"How can I {action} my {thing} {context}?",
            answer=f"To {action} your {thing} {context}, open your account and follow step {len(made) % 7 + 1}.",
            keywords=tuple(rng.sample(_THINGS, 2)),
        ))
    return KnowledgeBase(made, tenant_id="bench", version="1")


def questions(kb: Sequence[KnowledgeEntry], count: int, *, seed: int = 11) -> list[str]:
    """Paraphrases of entries (a word dropped, fillers and unknown words added) and a share of unrelated ones."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    out: list[str] = []
    for _ in range(count):
        if rng.random() < 0.2:
            out.append(" ".join(rng.sample(_UNKNOWN, 3)) + "?")
            continue
        words = rng.choice(kb).question.rstrip("?").split()
        del words[rng.randrange(len(words))]
        words.insert(0, rng.choice(_FILLERS))
        if rng.random() < 0.5:
            words.append(rng.choice(_UNKNOWN))
        out.append(" ".join(words) + "?")
    return out


class NaiveTfIdf:
    """The baseline: TF-IDF vectors as dicts and a cosine against every entry, in plain Python."""

    def __init__(self, kb: Sequence[KnowledgeEntry]) -> None:
        docs = [Counter(tokenize(entry.search_text())) for entry in kb]
        df = Counter(term for doc in docs for term in doc)
        self._idf = {term: math.log(len(docs) / count) + 1.0 for term, count in df.items()}
        self._vectors = [{t: tf * self._idf[t] for t, tf in doc.items()} for doc in docs]
        self._norms = [math.sqrt(sum(v * v for v in vec.values())) or 1.0 for vec in self._vectors]
        self._entries = list(kb)

    def best(self, question: str) -> tuple[KnowledgeEntry | None, float]:
        query = {t: tf * self._idf[t] for t, tf in Counter(tokenize(question)).items() if t in self._idf}
        qnorm = math.sqrt(sum(v * v for v in query.values())) or 1.0
        best, best_score = None, 0.0
        for entry, vec, norm in zip(self._entries, self._vectors, self._norms, strict=True):
            score = sum(w * vec.get(t, 0.0) for t, w in query.items()) / (norm * qnorm)
            if score > best_score:
                best, best_score = entry, score
        return best, best_score


def _measure(fn: Callable[[str], object], queries: list[str]) -> tuple[float, list[float]]:
    for query in queries[:200]:  # warm-up: caches, lazily built tables
        fn(query)
    timings = []
    started = time.perf_counter()
    for query in queries:
        t0 = time.perf_counter_ns()
        fn(query)
        timings.append((time.perf_counter_ns() - t0) / 1000.0)
    return len(queries) / (time.perf_counter() - started), timings


def _p99(timings: list[float]) -> float:
    return statistics.quantiles(timings, n=100)[98]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--queries", type=int, default=5000)
    args = parser.parse_args(argv)

    kb = synthetic_kb(args.entries)
    queries = questions(kb, args.queries)
    scorer = OfflineScorer()
    t0 = time.perf_counter()
    scorer.index(kb)
    build_ms = (time.perf_counter() - t0) * 1000.0
    qps, timings = _measure(lambda q: scorer.score(q, kb), queries)
    naive = NaiveTfIdf(kb)
    base_qps, base_timings = _measure(naive.best, queries)
    confident = sum(scorer.score(q, kb).confidence >= 0.7 for q in queries)

    print(f"knowledge base: {len(kb)} entries, index built in {build_ms:.1f} ms; {len(queries)} questions")
    print(f"{'':24}{'queries/s':>12}{'mean µs':>10}{'p50 µs':>10}{'p99 µs':>10}")
    for label, rate, times in (("OfflineScorer.score", qps, timings), ("naive TF-IDF scan", base_qps, base_timings)):
        print(f"{label:24}{rate:12.0f}{statistics.fmean(times):10.1f}{statistics.median(times):10.1f}"
              f"{_p99(times):10.1f}")
    print(f"answered with confidence >= 0.70: {confident / len(queries):.0%}")
    print(f"RESULT scorer queries_per_s={qps:.0f} p99_us={_p99(timings):.1f} baseline_queries_per_s={base_qps:.0f} "
          f"speedup={qps / base_qps:.2f} build_ms={build_ms:.1f}")


if __name__ == "__main__":
    main()
