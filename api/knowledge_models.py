"""Request and response models of ``/v1/knowledge``: the question/answer pairs the AI answers from."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_KEYWORDS = 30
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class KnowledgeEntryCreate(BaseModel):
    """A question as customers ask it, its answer, and keywords for phrasings the question does not use."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(min_length=1, max_length=500)
    answer: str = Field(min_length=1, max_length=4000)
    keywords: list[Keyword] = Field(default_factory=list, max_length=MAX_KEYWORDS)

    @field_validator("keywords")
    @classmethod
    def _unique(cls, keywords: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for keyword in keywords:
            seen.setdefault(keyword.casefold(), keyword)
        return list(seen.values())


class KnowledgeEntryPublic(BaseModel):
    id: str
    question: str
    answer: str
    keywords: list[str]
    created_at: datetime
    updated_at: datetime
