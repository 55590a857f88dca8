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

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "questions": [
                    {"text": "what time do you open", "entry_id": "2b4d6f8a-0c1e-4a3b-9d5f-7e8a9b0c1d2e"},
                    {"text": "can I pay by card?", "answer": "Yes, we take every major card."},
                    {"text": "what is the meaning of life"},
                ],
                "provider": "offline", "threshold": 0.7,
            },
        ]},
        extra="forbid")

    questions: list[LabelledQuestion] = Field(min_length=1, max_length=MAX_QUESTIONS)
    entries: list[KnowledgeEntryCreate] | None = Field(None, min_length=1, max_length=MAX_EVALUATED_ENTRIES)
    provider: Literal["offline", "lexical"] = "offline"
    threshold: float | None = Field(None, ge=0.0, le=1.0)


MAX_TRY_QUESTION = 1000  # characters: about what a customer's message carries


class TryRequest(BaseModel):
    """``POST /v1/ai/try``: a question as a customer would write it; ``threshold`` previews another threshold
    (default: the tenant's)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True,
                              json_schema_extra={"examples": [{"question": "When are you open?"},
                                                              {"question": "Do you ship abroad?", "threshold": 0.5}]})

    question: str = Field(min_length=1, max_length=MAX_TRY_QUESTION)
    threshold: float | None = Field(None, ge=0.0, le=1.0)


class TryResult(BaseModel):
    """What the AI would do with the question: send ``reply`` (``would_send``) or hand the conversation over."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "outcome": "reply", "would_send": True, "reply": "We are open 9:00 to 17:00, Monday to Friday.",
        "confidence": 0.91, "threshold": 0.7, "reason": "matched entry 'When are you open?'",
        "provider": "semantic", "tenant_provider": "offline", "note": None}]})

    outcome: Literal["reply", "handoff"]
    would_send: bool = Field(description="true when the reply would be sent to the customer at this threshold")
    reply: str | None = Field(description="the answer the AI found (also when it would hand over instead)")
    confidence: float
    threshold: float
    reason: str
    provider: str = Field(description="the provider that answered here")
    tenant_provider: Literal["offline", "openai", "off"]
    note: str | None = Field(description="why this answer may differ from a customer's (another provider, AI off)")
