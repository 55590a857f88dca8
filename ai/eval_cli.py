"""``aerostic eval ai``: evaluate a provider on a knowledge base and labelled questions from files.

``--knowledge kb.json``: a list of ``{"question", "answer", "keywords"?: [...], "id"?}``;
``--questions q.json``: a list of ``{"text", "answer": "…" | null}`` (null: out of scope); or
``--clinc [--per-entry N]`` for the bundled CLINC150 split (``tests/data/clinc150``, CC BY 3.0).
``--provider offline`` (the default: semantic, or BM25 when the model is missing), ``lexical``
(BM25) or ``openai`` (the model of ``AEROSTIC_OPENAI_BASE_URL`` / ``_MODEL`` / ``_API_KEY``).
Prints the table of ``ai.evaluation.format_report``, or the report as JSON with ``--json``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from ai.evaluation import Labelled, evaluate, format_report
from ai.knowledge import KnowledgeBase, KnowledgeEntry
from ai.offline import load_offline
from ai.openai_provider import OpenAIConfig, OpenAIProvider
from ai.provider import Provider
from ai.scorer import OfflineScorer


class EvalInputError(ValueError):
    """A knowledge or questions file that cannot be used; the message names the file and the problem."""


def read_knowledge(path: Path) -> KnowledgeBase:
    """The entries of a JSON file (ids default to their position)."""
    try:
        raw = json.loads(path.read_text())
        rows = TypeAdapter(list[dict[str, Any]]).validate_python(raw)
        entries = [KnowledgeEntry.model_validate({"id": str(i), **row}) for i, row in enumerate(rows)]
    except (OSError, ValueError) as exc:
        raise EvalInputError(f"{path}: {exc}") from exc
    return KnowledgeBase(entries, tenant_id=f"eval:{path}")


def read_questions(path: Path) -> list[Labelled]:
    """The labelled questions of a JSON file."""
    try:
        rows = TypeAdapter(list[dict[str, Any]]).validate_python(json.loads(path.read_text()))
        questions = [Labelled(str(row["text"]), None if row.get("answer") is None else str(row["answer"]))
                     for row in rows]
    except (OSError, ValueError, KeyError) as exc:
        raise EvalInputError(f"{path}: {exc!r}") from exc
    return questions


def provider_named(name: str, config: OpenAIConfig | None = None) -> Provider:
    """The provider ``name`` (``offline``, ``lexical`` or ``openai`` with ``config``)."""
    lexical = OfflineScorer()
    if name == "lexical":
        return lexical
    if name == "openai":
        if config is None:
            raise EvalInputError("the openai provider needs AEROSTIC_OPENAI_BASE_URL")
        return OpenAIProvider(config, ranker=lexical)
    return load_offline(lexical)[0]


async def run(provider: Provider, kb: KnowledgeBase, questions: list[Labelled], threshold: float,
              *, as_json: bool) -> str:
    """The report, as text or JSON; closes the provider."""
    try:
        result = await evaluate(provider, kb, questions, threshold=threshold)
    finally:
        await provider.aclose()
    if as_json:
        return json.dumps(result.as_dict(), indent=2)
    return format_report(f"{provider.name} on {len(kb)} entries", result)


def main(provider: Provider, kb: KnowledgeBase, questions: list[Labelled], threshold: float, *,
         as_json: bool = False) -> int:
    print(asyncio.run(run(provider, kb, questions, threshold, as_json=as_json)))
    return 0
