"""Grounding a chat model on the tenant's knowledge base, and reading its JSON decision defensively.

The model sees a system prompt with the best-ranked entries (the offline scorer's BM25 ranking keeps
the prompt small), the last turns of the conversation as chat messages (customer → ``user``,
business → ``assistant``), then the customer's message. It must answer with
``{"reply": str, "confidence": number, "reason": str}``; ``parse_answer`` refuses anything else
with a ``ModelError`` so that the agent hands the conversation over instead of sending garbage.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)

from ai.exceptions import ModelError
from ai.knowledge import KnowledgeEntry
from ai.provider import Answer
from ai.scorer import OfflineScorer
from schemas.ai import Turn

DECISION_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "reply": {"type": "string", "description": "the message to send to the customer"},
        "confidence": {"type": "number", "description": "0 to 1: how sure the reply is right and grounded"},
        "reason": {"type": "string", "description": "one short sentence: the entries used or what is missing"},
    },
    "required": ["reply", "confidence", "reason"],
    "additionalProperties": False,
}

INSTRUCTIONS = """\
You are the customer-service assistant of a business on WhatsApp. Answer the customer's last \
message using only the knowledge base below.

Rules:
- Use only facts from the knowledge base. Never invent prices, dates, policies, links or promises.
- Reply in the customer's language, in at most three short sentences of plain text (no Markdown).
- "confidence" is your probability, from 0 to 1, that the reply fully and correctly answers the \
message from the knowledge base alone.
- If the knowledge base does not answer the message, or the customer asks for a person, is upset, \
or needs something done on their account, still write a short polite reply, set "confidence" \
below 0.3 and say why in "reason".
- "reason" is one short sentence in English naming the entry ids you used, or what is missing.

Answer with one JSON object and nothing else: \
{"reply": string, "confidence": number between 0 and 1, "reason": string}.

Knowledge base:
"""

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
_MAX_REASON = 300


def select_grounding(
    question: str, knowledge: Sequence[KnowledgeEntry], ranker: OfflineScorer, *, k: int
) -> list[KnowledgeEntry]:
    """The ``k`` entries to show the model: all of a small base, else BM25's best, padded in base order."""
    if len(knowledge) <= k:
        return list(knowledge)
    chosen = [match.entry for match in ranker.rank(question, knowledge, k=k)]
    if len(chosen) < k:  # a paraphrase in other words (or another language) may still be answerable
        taken = {id(entry) for entry in chosen}
        chosen.extend(entry for entry in knowledge if id(entry) not in taken)
        del chosen[k:]
    return chosen


def system_prompt(entries: Sequence[KnowledgeEntry]) -> str:
    """The instructions followed by the knowledge-base entries, one block per entry."""
    if not entries:
        return INSTRUCTIONS + "(empty: nothing can be answered from it)\n"
    blocks = [f"[{entry.id}]\nQ: {entry.question}\nA: {entry.answer}" for entry in entries]
    return INSTRUCTIONS + "\n\n".join(blocks) + "\n"


def build_messages(
    question: str, history: Sequence[Turn], entries: Sequence[KnowledgeEntry], *, history_turns: int
) -> list[ChatCompletionMessageParam]:
    """The chat messages: system prompt, the last ``history_turns`` turns, then the customer's message."""
    messages: list[ChatCompletionMessageParam] = [
        ChatCompletionSystemMessageParam(role="system", content=system_prompt(entries))
    ]
    for turn in history[-history_turns:] if history_turns > 0 else ():
        if turn.role == "customer":
            messages.append(ChatCompletionUserMessageParam(role="user", content=turn.text))
        else:
            messages.append(ChatCompletionAssistantMessageParam(role="assistant", content=turn.text))
    messages.append(ChatCompletionUserMessageParam(role="user", content=question))
    return messages


def parse_answer(content: str | None) -> Answer:
    """The model's JSON decision as an ``Answer``; anything unusable raises ``ModelError`` with the reason."""
    if content is None or not content.strip():
        raise ModelError("the model returned no content")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise ModelError(f"the model's answer is not JSON: {_preview(text)}") from None
    if not isinstance(data, dict):
        raise ModelError(f"the model's answer is not a JSON object: {_preview(text)}")
    reply = data.get("reply")
    if not isinstance(reply, str) or not reply.strip():
        raise ModelError("the model returned an empty reply")
    confidence = data.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ModelError("the model's confidence is missing or not a number")
    if not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
        raise ModelError(f"the model's confidence {confidence!r} is outside [0, 1]")
    reason = data.get("reason")
    reason = reason.strip()[:_MAX_REASON] if isinstance(reason, str) and reason.strip() else "the model gave no reason"
    return Answer(reply.strip(), float(confidence), reason)


def _preview(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")
