"""Request models of ``/v1/ai``: evaluating the AI on labelled questions (bounded), and the gaps' query."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ai.evaluation import MAX_QUESTIONS
from api.knowledge_models import KnowledgeEntryCreate

MAX_EVALUATED_ENTRIES = 2000


class LabelledQuestion(BaseModel):
    """A question and what it should get: an answer's text, or an entry of the tenant's knowledge base
    (``entry_id``), or neither when it is out of scope (a person should take it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=1000)
    answer: str | None = Field(None, min_length=1, max_length=4000)
    entry_id: str | None = Field(None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_label(self) -> LabelledQuestion:
        if self.answer is not None and self.entry_id is not None:
            raise ValueError("give answer or entry_id, not both")
        return self


class EvaluateRequest(BaseModel):
    """What to evaluate: the tenant's knowledge base (or ``entries`` given here), at its threshold or this one."""

    model_config = ConfigDict(extra="forbid")

    questions: list[LabelledQuestion] = Field(min_length=1, max_length=MAX_QUESTIONS)
    entries: list[KnowledgeEntryCreate] | None = Field(None, min_length=1, max_length=MAX_EVALUATED_ENTRIES)
    provider: Literal["offline", "lexical"] = "offline"
    threshold: float | None = Field(None, ge=0.0, le=1.0)
