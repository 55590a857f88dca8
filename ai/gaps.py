"""Knowledge gaps: the questions the AI handed over, grouped by meaning, most asked first.

``group`` takes handed-over questions (newest first) and joins each to the first group whose
centre it is close to: cosine of sentence embeddings at least ``SIMILAR`` (0.70) with the semantic
model, else (BM25 fallback) the weighted overlap of their words (Jaccard of ``tokenize`` terms at
least 0.5). A group reports how many times it was asked, its most frequent wording and a few
others, and when it was last asked, so an admin can add the entry that is missing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ai.embedding import Vectors
from ai.knowledge import normalise, tokenize

SIMILAR = 0.70
SIMILAR_WORDS = 0.5
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Asked:
    """One handed-over question."""

    text: str
    at: datetime
    reason: str = ""


@dataclass(slots=True)
class Gap:
    """A group of similar handed-over questions."""

    question: str
    count: int
    last_at: datetime
    examples: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def group(asked: Sequence[Asked], embed: Callable[[Sequence[str]], Vectors] | None, *, limit: int) -> list[Gap]:
    """The ``limit`` largest groups of ``asked`` (see the module docstring), largest first."""
    items = [a for a in asked if normalise(a.text)]
    members: list[list[int]] = []
    if embed is not None and items:
        vectors = embed([a.text for a in items])
        sums: list[Vectors] = []
        for i, v in enumerate(vectors):
            if sums:
                centres = np.stack(sums)
                centres = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
                sims = centres @ v
                best = int(np.argmax(sims))
                if sims[best] >= SIMILAR:
                    members[best].append(i)
                    sums[best] = sums[best] + v
                    continue
            members.append([i])
            sums.append(v.copy())
    else:
        terms = [frozenset(tokenize(a.text)) or frozenset([normalise(a.text)]) for a in items]
        heads: list[frozenset[str]] = []
        for i, t in enumerate(terms):
            for g, head in enumerate(heads):
                if len(t & head) / len(t | head) >= SIMILAR_WORDS:
                    members[g].append(i)
                    break
            else:
                members.append([i])
                heads.append(t)
    gaps = []
    for indexes in members:
        texts = [items[i].text for i in indexes]
        wording = Counter(normalise(t) for t in texts).most_common(1)[0][0]
        question = next(t for t in texts if normalise(t) == wording)
        distinct = list(dict.fromkeys(t for t in texts if normalise(t) != wording))[:EXAMPLES - 1]
        reasons = list(dict.fromkeys(items[i].reason for i in indexes if items[i].reason))[:3]
        gaps.append(Gap(question, len(indexes), max(items[i].at for i in indexes), [question, *distinct], reasons))
    gaps.sort(key=lambda g: (-g.count, -g.last_at.timestamp()))
    return gaps[:limit]
