"""Request and response models of ``/v1/knowledge``: the question/answer pairs the AI answers from."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_KEYWORDS = 30
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class KnowledgeEntryCreate(BaseModel):
    """A question as customers ask it, its answer, and keywords for phrasings the question does not use."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "question": "When are you open?", "answer": "We are open 9:00 to 17:00, Monday to Friday.",
                "keywords": ["hours", "opening times"],
            },
        ]},
        extra="forbid", str_strip_whitespace=True)

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
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "2b4d6f8a-0c1e-4a3b-9d5f-7e8a9b0c1d2e", "question": "When are you open?",
                "answer": "We are open 9:00 to 17:00, Monday to Friday.", "keywords": ["hours", "opening times"],
                "created_at": "2026-11-20T08:30:00Z", "updated_at": "2026-11-20T08:30:00Z",
            },
        ]})

    id: str
    question: str
    answer: str
    keywords: list[str]
    created_at: datetime
    updated_at: datetime
