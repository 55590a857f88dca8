"""Which offline provider a process runs: the semantic one when its model is installed, else BM25.

``load_offline`` is called once per process (the AI worker, the API's evaluation): it loads the
sentence model if the package is there, and says which provider answers and why, for the log and
the health record. BM25 (``OfflineScorer``) also ranks the entries that ground an OpenAI-compatible
model's prompt, whichever provider answers offline.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from ai.embedding import MODEL_NAME, MODEL_PACKAGE, load_encoder
from ai.provider import Provider
from ai.scorer import OfflineScorer
from ai.semantic import SemanticScorer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OfflineStatus:
    """What answers a tenant whose provider is ``offline``, for logs and health."""

    provider: str  # "semantic" or "lexical"
    model: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_offline(lexical: OfflineScorer, *, package: str = MODEL_PACKAGE) -> tuple[Provider, OfflineStatus]:
    """The semantic provider over ``package``'s model, or ``lexical`` (BM25) when it is not installed."""
    try:
        encoder = load_encoder(package)
    except Exception as exc:  # a broken install must not stop the worker: BM25 still answers
        log.exception("sentence model %s failed to load", package)
        encoder, why = None, f"the sentence model failed to load ({type(exc).__name__}); answering with BM25"
    else:
        why = f"the sentence model package {package} is not installed; answering with BM25"
    if encoder is None:
        log.warning("offline AI provider: lexical (BM25): %s", why)
        return lexical, OfflineStatus("lexical", None, why)
    log.info("offline AI provider: semantic (%s)", MODEL_NAME)
    status = OfflineStatus("semantic", MODEL_NAME, f"sentence embeddings of {MODEL_NAME}, hybrid with BM25")
    return SemanticScorer(encoder, lexical=lexical), status
