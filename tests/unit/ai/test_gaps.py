"""Knowledge gaps: handed-over questions grouped by meaning (the model) or by words (BM25 fallback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai.embedding import load_encoder
from ai.gaps import Asked, group

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _asked(*texts: str) -> list[Asked]:
    return [Asked(t, NOW - timedelta(minutes=i), "confidence 0.10 < 0.70") for i, t in enumerate(texts)]


def test_similar_questions_are_grouped_by_meaning_with_counts() -> None:
    encoder = load_encoder()
    assert encoder is not None
    asked = _asked("Do you deliver to Canada?", "can you ship my order to canada", "Do you deliver to Canada?",
                   "is there a student discount", "do students get a discount?", "what's the weather tomorrow")
    gaps = group(asked, encoder.encode, limit=10)
    assert [(g.count, g.question) for g in gaps] == [
        (3, "Do you deliver to Canada?"), (2, "is there a student discount"), (1, "what's the weather tomorrow")]
    assert gaps[0].examples == ["Do you deliver to Canada?", "can you ship my order to canada"]
    assert gaps[0].last_at == NOW and gaps[0].reasons == ["confidence 0.10 < 0.70"]
    assert len(group(asked, encoder.encode, limit=1)) == 1


def test_without_the_model_questions_are_grouped_by_their_words() -> None:
    asked = _asked("Do you deliver to Canada?", "do you deliver to canada please", "student discount?", "", "?!")
    gaps = group(asked, None, limit=10)
    assert [(g.count, g.question) for g in gaps] == [(2, "Do you deliver to Canada?"), (1, "student discount?")]
