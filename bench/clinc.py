"""CLINC150's "small" split as a knowledge base and labelled questions (tests/data/clinc150, CC BY 3.0).

Each intent's training questions become entries whose answer is the intent's name (all of them, or
the first ``per_entry``); the test questions are asked, the out-of-scope ones labelled None.
"""

from __future__ import annotations

import json
from pathlib import Path

from ai.evaluation import Labelled
from ai.knowledge import KnowledgeBase, KnowledgeEntry

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "clinc150" / "data_small.json"


def load(per_entry: int | None = None, *, path: Path = DATA) -> tuple[KnowledgeBase, list[Labelled]]:
    """The knowledge base (``per_entry`` training questions per intent) and the test questions."""
    data = json.loads(path.read_text())
    counts: dict[str, int] = {}
    entries = []
    for text, intent in data["train"]:
        counts[intent] = counts.get(intent, 0) + 1
        if per_entry is None or counts[intent] <= per_entry:
            entries.append(KnowledgeEntry(id=f"{intent}-{counts[intent]}", question=text, answer=intent))
    questions = [Labelled(text, intent) for text, intent in data["test"]]
    questions += [Labelled(text, None) for text, _ in data["oos_test"]]
    label = "all" if per_entry is None else str(per_entry)
    return KnowledgeBase(entries, tenant_id=f"clinc150:{label}"), questions
