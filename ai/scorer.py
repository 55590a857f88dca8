"""The offline provider: BM25 over the knowledge base, a calibrated confidence and an ambiguity check.

No network and no key: this is what answers when a tenant has no model configured, and what ranks
the entries that ground a model's prompt.

**Ranking.** Each entry is one BM25 document (bm25s, Lucene variant, k1 = 1.5, b = 0.75) made of
its question and keywords. The index is built once per knowledge-base version and kept per tenant.

**Confidence.** Raw BM25 scores only rank: they are not comparable from one message to the next
(they grow with the number and rarity of the words). The best ``candidates`` (10) by BM25 are
measured instead by how much the message and the entry agree, weighting each word by BM25's own
(Lucene) IDF so that rare words count more than common ones:

* M, the matched weight: the message's words found in the entry (its question or its keywords;
  keywords are synonyms that stand in for the question's words).
* recall R = M / weight of the message. A word the knowledge base has never seen weighs as much as
  its rarest word (IDF at df = 1, as if the message were one more entry), so "fix my car engine,
  it is broken" is not rescued by "broken"; unknown pure numbers (an order number) weigh nothing.
* precision P = min(1, M / weight of the entry's question), or the share of one keyword phrase the
  message contains if higher. It keeps "how do I return an item" on the general returns entry
  rather than on "can I return a sale item".
* confidence = 2RP / (R + P), the IDF-weighted F1 (Dice coefficient) of message and entry: 1 when
  the message says exactly what the entry is about, 0 without a shared word, lower when either
  side has words the other lacks. The reply is the candidate with the highest confidence (BM25
  order breaks ties).

**Ambiguity** (as Rasa's FallbackClassifier): when the runner-up with a *different* answer is within
``ambiguity_margin`` (0.1) of the best, the confidence is shared between them in proportion to their
confidences, best * best / (best + runner-up), which is never more than about half, and the reason
names both entries: with the default 0.70 threshold the conversation goes to a human.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import bm25s
import numpy as np

from ai.knowledge import KnowledgeBase, KnowledgeEntry, fingerprint, normalise, tokenize
from ai.provider import Answer
from schemas.ai import Turn

# bm25s sets its own logger to DEBUG at import, which would print a line per index build.
logging.getLogger("bm25s").setLevel(logging.WARNING)

DEFAULT_AMBIGUITY_MARGIN = 0.1


@dataclass(frozen=True, slots=True)
class Match:
    """One ranked entry: its BM25 score and the calibrated confidence with its two halves."""

    entry: KnowledgeEntry
    score: float
    confidence: float
    recall: float
    precision: float
    answer_key: str = field(default="", repr=False)  # the answer normalised: equal answers are never rivals


@dataclass(frozen=True, slots=True)
class _Doc:
    entry: KnowledgeEntry
    terms: frozenset[str]  # question and keywords
    question_weight: float  # total IDF of the question's terms
    keywords: tuple[tuple[frozenset[str], float], ...]  # each keyword phrase's terms and their total IDF
    answer_key: str  # the answer, normalised: two entries with the same answer are not ambiguous


class _Query:
    """A question's distinct terms with their weights (IDF, or the unknown-word weight)."""

    __slots__ = ("present", "terms", "total", "weights")

    def __init__(self, terms: Sequence[str], weights: list[float]) -> None:
        self.terms = terms
        self.weights = weights
        self.total = math.fsum(weights)
        self.present = frozenset(terms)


class KnowledgeIndex:
    """The BM25 index and IDF table of one version of a knowledge base."""

    def __init__(self, entries: Sequence[KnowledgeEntry], *, version: str, k1: float = 1.5, b: float = 0.75) -> None:
        self.version = version
        self.size = len(entries)
        vocab: dict[str, int] = {}
        corpus: list[list[int]] = []
        for entry in entries:
            corpus.append([vocab.setdefault(term, len(vocab)) for term in tokenize(entry.search_text())])
        self._vocab = vocab
        df = [0] * len(vocab)
        for ids in corpus:
            for token_id in set(ids):
                df[token_id] += 1
        n = len(corpus)
        self._idf = {term: _idf(df[token_id], n) for term, token_id in vocab.items()}
        self._unknown_weight = _idf(1, n)  # an unseen word counts as much as the rarest known one
        self._docs = tuple(self._doc(entry) for entry in entries)
        self._bm25: bm25s.BM25 | None = None
        if vocab:
            self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
            self._bm25.index((corpus, dict(vocab)), show_progress=False)

    def _doc(self, entry: KnowledgeEntry) -> _Doc:
        question = frozenset(tokenize(entry.question))
        keywords = tuple(
            (terms, math.fsum(self._idf[t] for t in terms))
            for terms in (frozenset(tokenize(keyword)) for keyword in entry.keywords)
            if terms
        )
        terms = question.union(*(k for k, _ in keywords))
        question_weight = math.fsum(self._idf[t] for t in question)
        return _Doc(entry, terms, question_weight, keywords, normalise(entry.answer))

    def search(self, terms: Sequence[str], k: int) -> list[Match]:
        """The ``k`` best entries by BM25 that share at least one term with ``terms``, best first."""
        ids = [self._vocab[t] for t in terms if t in self._vocab]
        if not ids or self._bm25 is None or k <= 0:
            return []
        scores = self._bm25.get_scores_from_ids(ids)
        if k < len(scores):
            top = np.argpartition(-scores, k - 1)[:k]
            order = top[np.argsort(-scores[top], kind="stable")]
        else:
            order = np.argsort(-scores, kind="stable")
        query = _Query(terms, [self._weight(t) for t in terms])
        matches = []
        for i in order.tolist():
            score = float(scores[i])
            if score <= 0.0:
                break
            matches.append(self._measure(self._docs[i], score, query))
        return matches

    def _weight(self, term: str) -> float:
        idf = self._idf.get(term)
        if idf is not None:
            return idf
        return 0.0 if term.isdigit() else self._unknown_weight

    def _measure(self, doc: _Doc, score: float, query: _Query) -> Match:
        matched = math.fsum(w for t, w in zip(query.terms, query.weights, strict=True) if t in doc.terms)
        recall = matched / query.total if query.total else 0.0
        # The question's share the message accounts for; a keyword it uses stands in for a question word.
        precision = min(1.0, matched / doc.question_weight) if doc.question_weight else 0.0
        for phrase, weight in doc.keywords:  # or a whole keyword phrase found in the message
            if weight and precision < 1.0:
                precision = max(precision, math.fsum(self._idf[t] for t in phrase if t in query.present) / weight)
        confidence = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
        return Match(doc.entry, score, min(1.0, confidence), recall, precision, doc.answer_key)


def _idf(df: int, n: int) -> float:
    """Lucene's BM25 IDF, the one bm25s uses with ``method="lucene"``."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


class OfflineScorer:
    """The offline provider (``name = "offline"``); one instance can serve every tenant.

    Indexes are cached per tenant and rebuilt only when the knowledge base's version changes; pass a
    ``KnowledgeBase`` (a plain sequence is fingerprinted on every call, which costs more than scoring).
    """

    name = "offline"

    def __init__(
        self,
        *,
        ambiguity_margin: float = DEFAULT_AMBIGUITY_MARGIN,
        candidates: int = 10,
        k1: float = 1.5,
        b: float = 0.75,
        max_indexes: int = 1024,
    ) -> None:
        if not 0.0 <= ambiguity_margin <= 1.0:
            raise ValueError(f"ambiguity_margin must be within [0, 1], got {ambiguity_margin}")
        self.ambiguity_margin = ambiguity_margin
        self.candidates = max(2, candidates)
        self.k1 = k1
        self.b = b
        self.max_indexes = max_indexes
        self.index_builds = 0
        self._indexes: OrderedDict[str, KnowledgeIndex] = OrderedDict()

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        """Answer from the knowledge base alone; the history is not used by the offline scorer."""
        return self.score(question, knowledge)

    async def aclose(self) -> None:
        """Nothing to release: the scorer is shared, and its cache stays for the other tenants."""

    def index(self, knowledge: Sequence[KnowledgeEntry]) -> KnowledgeIndex:
        """The index of ``knowledge``, built now if its tenant has none at this version."""
        if isinstance(knowledge, KnowledgeBase):
            tenant, version = knowledge.tenant_id, knowledge.version
        else:
            tenant, version = "", fingerprint(knowledge)
        index = self._indexes.get(tenant)
        if index is not None and index.version == version:
            self._indexes.move_to_end(tenant)
            return index
        index = KnowledgeIndex(knowledge, version=version, k1=self.k1, b=self.b)
        self.index_builds += 1
        self._indexes[tenant] = index
        self._indexes.move_to_end(tenant)
        while len(self._indexes) > self.max_indexes:
            self._indexes.popitem(last=False)
        return index

    def rank(self, question: str, knowledge: Sequence[KnowledgeEntry], *, k: int = 8) -> list[Match]:
        """The ``k`` entries that best match ``question`` by BM25, best first (only entries sharing a word)."""
        terms = list(dict.fromkeys(tokenize(question)))
        return self.index(knowledge).search(terms, k) if terms and knowledge else []

    def score(self, question: str, knowledge: Sequence[KnowledgeEntry]) -> Answer:
        """The best entry's answer with the calibrated confidence described in the module docstring."""
        if not knowledge:
            return Answer(None, 0.0, "the knowledge base is empty")
        terms = list(dict.fromkeys(tokenize(question)))
        if not terms:
            return Answer(None, 0.0, "the question has no searchable words")
        index = self.index(knowledge)
        matches = index.search(terms, self.candidates)
        if not matches:
            return Answer(None, 0.0, "no knowledge-base entry shares a word with the question")
        ranked = sorted(matches, key=lambda m: m.confidence, reverse=True)  # stable: BM25 breaks ties
        best = ranked[0]
        rival = next((m for m in ranked[1:] if m.answer_key != best.answer_key), None)
        if rival is not None and best.confidence - rival.confidence < self.ambiguity_margin:
            confidence = best.confidence * best.confidence / (best.confidence + rival.confidence)
            reason = f"ambiguous between {_describe(best)} and {_describe(rival)}"
            return Answer(best.entry.answer, confidence, reason)
        reason = f"best match {_describe(best)}, recall {best.recall:.2f}, precision {best.precision:.2f}"
        return Answer(best.entry.answer, best.confidence, reason)


def _describe(match: Match) -> str:
    return f"{match.entry.id} “{match.entry.question}” ({match.confidence:.2f})"
