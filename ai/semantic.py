"""The semantic offline provider: sentence embeddings, a per-tenant classifier and a similarity gate.

**Examples.** Every entry's question, and its keyword phrases together (one text), is embedded by
all-MiniLM-L6-v2 (``ai.embedding``); embeddings are cached by text, so an edit embeds only what
changed. Entries with the same answer (normalised) form one class: they are never rivals.

**Classifier.** Per knowledge-base version, a softmax (multinomial logistic regression) over the
classes, logits ``T · (x·W + b)`` with ``T = 20``, initialised at the classes' mean directions
(the nearest-centroid rule) and trained by full-batch gradient descent with momentum on the
tenant's own examples (L2 1e-3, at most 60 epochs and about 6·10^10 multiply-adds). The softmax
is the margin between different answers: two answers close to the question share the probability.

**Confidence** = ``p^0.7 · gate``: ``p`` the best answer's probability (the exponent puts the default
threshold 0.70 at p = 0.60, where CLINC150's curve meets the goals; it is monotone, so it only
moves the scale), and ``gate`` the cosine of the nearest example of that answer mapped linearly from
0 at 0.30 to 1 at 0.50. A classifier spreads all its probability over the answers it knows, so a
knowledge base of three entries would otherwise be "sure" of one of them for any question; the gate
is what hands over an out-of-scope question whatever the size of the base.

**Hybrid.** With a lexical scorer (BM25, ``ai.scorer``), when its best answer is the same as the
classifier's, the confidence is the higher of the two: two independent views agreeing. On CLINC150
this adds 0.6 points of in-scope accuracy at the same precision; when they disagree, the semantic
confidence stands (BM25 alone is the weaker of the two).

Indexes (embeddings, classifier) are kept per tenant and rebuilt when the version changes; the least
recently used are dropped past 256 tenants or 160 MB, and the text cache past 50,000 texts (77 MB), so
a worker stays near 300 MB resident (the model is 90 MB).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ai.embedding import DIMENSIONS, Encoder, Vectors
from ai.knowledge import KnowledgeBase, KnowledgeEntry, fingerprint, normalise
from ai.provider import Answer
from ai.scorer import OfflineScorer
from schemas.ai import Turn

TEMPERATURE = 20.0
EXPONENT = 0.7
GATE_LOW, GATE_HIGH = 0.30, 0.50
MAX_EPOCHS = 60
TRAIN_BUDGET = 6e10  # multiply-adds spent training one version of a knowledge base
MAX_CACHED_TEXTS = 50_000  # embeddings kept by text: at most ~77 MB
MAX_INDEX_BYTES = 160 * 2**20  # the tenants' indexes (examples and classifier), least recently used evicted


@dataclass(frozen=True, slots=True)
class Prediction:
    """The classifier's view of one question: best answer, its probability and nearest example."""

    entry: KnowledgeEntry
    probability: float
    similarity: float  # cosine of the nearest example with the predicted answer
    confidence: float
    runner_up: KnowledgeEntry | None
    runner_up_probability: float


def train_softmax(x: Vectors, y: npt.NDArray[np.int64], classes: int) -> tuple[Vectors, Vectors]:
    """Weights and biases of the softmax classifier described in the module docstring."""
    dims = x.shape[1]
    centroids = np.zeros((classes, dims), dtype=np.float32)
    np.add.at(centroids, y, x)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    w = np.ascontiguousarray(centroids.T)
    b = np.zeros(classes, dtype=np.float32)
    if classes < 2:
        return w, b
    per_epoch = float(len(x)) * classes * dims * 2
    epochs = int(min(MAX_EPOCHS, max(5, TRAIN_BUDGET // per_epoch)))
    onehot = np.zeros((len(x), classes), dtype=np.float32)
    onehot[np.arange(len(x)), y] = 1.0
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    t, lr, momentum, l2 = np.float32(TEMPERATURE), np.float32(0.1), np.float32(0.9), np.float32(1e-3)
    for _ in range(epochs):
        grad = _softmax((x @ w + b) * t)
        grad -= onehot
        grad /= np.float32(len(x))
        vw = (momentum * vw - lr * (x.T @ grad * t + l2 * w)).astype(np.float32, copy=False)
        vb = (momentum * vb - lr * grad.sum(0) * t).astype(np.float32, copy=False)
        w += vw
        b += vb
    return w, b


def _softmax(z: Vectors) -> Vectors:
    z = z - z.max(-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(-1, keepdims=True)
    return z


def gate(similarity: float) -> float:
    """0 below ``GATE_LOW`` cosine, 1 above ``GATE_HIGH``, linear between."""
    return float(min(1.0, max(0.0, (similarity - GATE_LOW) / (GATE_HIGH - GATE_LOW))))


class SemanticIndex:
    """One version of a knowledge base: its examples' embeddings and the trained classifier."""

    def __init__(self, entries: Sequence[KnowledgeEntry], vectors: Vectors, owners: list[int], *, version: str) -> None:
        self.version = version
        self.entries = tuple(entries)
        keys: dict[str, int] = {}
        entry_class = [keys.setdefault(normalise(e.answer), len(keys)) for e in self.entries]
        self.classes = len(keys)
        self.vectors = vectors
        self.owners = np.asarray(owners, dtype=np.int64)  # example → entry
        self.labels = np.asarray([entry_class[o] for o in owners], dtype=np.int64)  # example → class
        self.w, self.b = train_softmax(vectors, self.labels, self.classes) if len(vectors) else (
            np.zeros((vectors.shape[1], 0), np.float32), np.zeros(0, np.float32))
        self.nbytes = int(vectors.nbytes + self.w.nbytes + self.b.nbytes + self.owners.nbytes + self.labels.nbytes)

    def predict(self, q: Vectors) -> Prediction | None:
        """The prediction for one embedded question ``q`` (shape ``(384,)``)."""
        if not len(self.vectors):
            return None
        sims = self.vectors @ q
        probs = _softmax(((q @ self.w + self.b) * np.float32(TEMPERATURE))[None, :])[0]
        order = np.argsort(-probs)
        best = int(order[0])
        in_class = np.flatnonzero(self.labels == best)
        nearest = int(in_class[np.argmax(sims[in_class])])
        similarity = float(sims[nearest])
        p = float(probs[best])
        confidence = min(1.0, p ** EXPONENT * gate(similarity))
        runner_up, p2 = None, 0.0
        if self.classes > 1:
            second = int(order[1])
            rivals = np.flatnonzero(self.labels == second)
            runner_up = self.entries[int(self.owners[rivals[np.argmax(sims[rivals])]])]
            p2 = float(probs[second])
        return Prediction(self.entries[int(self.owners[nearest])], p, similarity, confidence, runner_up, p2)


class SemanticScorer:
    """The semantic provider (``name = "semantic"``); one instance serves every tenant.

    ``answer`` embeds and trains in a thread so the event loop keeps serving other conversations.
    """

    name = "semantic"

    def __init__(self, encoder: Encoder, *, lexical: OfflineScorer | None = None, max_indexes: int = 256) -> None:
        self.encoder = encoder
        self.lexical = lexical
        self.max_indexes = max_indexes
        self.index_builds = 0
        self._indexes: OrderedDict[str, SemanticIndex] = OrderedDict()
        self._texts: OrderedDict[str, Vectors] = OrderedDict()
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        """Answer from the knowledge base alone; the history is not used."""
        return await asyncio.to_thread(self.score, question, knowledge)

    async def aclose(self) -> None:
        """Nothing to release: the scorer is shared."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of ``texts``, from the cache where already computed."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._texts))
        if missing:
            fresh = self.encoder.encode(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._texts[text] = vector
                while len(self._texts) > MAX_CACHED_TEXTS:
                    self._texts.popitem(last=False)
            known = dict(zip(missing, fresh, strict=True))
        else:
            known = {}
        with self._lock:
            rows = [known[t] if t in known else self._texts[t] for t in texts]
        return np.stack(rows) if rows else np.zeros((0, DIMENSIONS), np.float32)

    def index(self, knowledge: Sequence[KnowledgeEntry]) -> SemanticIndex:
        """The index of ``knowledge``, built now if its tenant has none at this version."""
        if isinstance(knowledge, KnowledgeBase):
            tenant, version = knowledge.tenant_id, knowledge.version
        else:
            tenant, version = "", fingerprint(knowledge)
        with self._lock:
            building = self._building.setdefault(tenant, threading.Lock())
        with building:  # questions arriving during a build wait for it instead of building it again
            with self._lock:
                index = self._indexes.get(tenant)
                if index is not None and index.version == version:
                    self._indexes.move_to_end(tenant)
                    return index
            index = build_index(self, knowledge, version)
            with self._lock:
                self.index_builds += 1
                self._indexes[tenant] = index
                self._indexes.move_to_end(tenant)
                while len(self._indexes) > 1 and (len(self._indexes) > self.max_indexes or sum(
                        i.nbytes for i in self._indexes.values()) > MAX_INDEX_BYTES):
                    evicted, _ = self._indexes.popitem(last=False)
                    self._building.pop(evicted, None)
        return index

    def score(self, question: str, knowledge: Sequence[KnowledgeEntry]) -> Answer:
        """The best answer with the confidence described in the module docstring."""
        if not knowledge:
            return Answer(None, 0.0, "the knowledge base is empty")
        if not normalise(question):
            return Answer(None, 0.0, "the question has no words")
        index = self.index(knowledge)
        prediction = index.predict(self.embed([question])[0])
        if prediction is None:
            return Answer(None, 0.0, "the knowledge base is empty")
        reason = describe(prediction)
        confidence = prediction.confidence
        if self.lexical is not None:
            lexical = self.lexical.score(question, knowledge)
            if (lexical.reply is not None and lexical.confidence > confidence
                    and normalise(lexical.reply) == normalise(prediction.entry.answer)):
                confidence = lexical.confidence
                reason += f"; BM25 agrees at {lexical.confidence:.2f}"
        return Answer(prediction.entry.answer, confidence, reason)


def build_index(scorer: SemanticScorer, entries: Sequence[KnowledgeEntry], version: str) -> SemanticIndex:
    """Embed every entry's question and keywords (at most two texts an entry) and train the classifier."""
    texts: list[str] = []
    owners: list[int] = []
    for i, entry in enumerate(entries):
        for text in (entry.question, ", ".join(k for k in entry.keywords if k.strip())):
            if text.strip():
                texts.append(text)
                owners.append(i)
    return SemanticIndex(entries, scorer.embed(texts), owners, version=version)


def describe(p: Prediction) -> str:
    """The reason an agent reads: the nearest entry, the probability and the runner-up answer."""
    text = (f"nearest knowledge-base entry {p.entry.id} “{p.entry.question}” (cosine {p.similarity:.2f}), "
            f"probability {p.probability:.2f}")
    if p.runner_up is not None:
        text += f", runner-up {p.runner_up.id} “{p.runner_up.question}” ({p.runner_up_probability:.2f})"
    return text
