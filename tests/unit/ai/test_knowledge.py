"""Knowledge-base entries, versions and the tokenizer the scorer relies on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ai.knowledge import KnowledgeBase, KnowledgeEntry, fingerprint, fold, normalise, tokenize


@pytest.mark.parametrize(("text", "expected"), [
    ("How long does SHIPPING take?!", "how long does shipping take"),
    ("Café crème, déjà vu", "cafe creme deja vu"),
    ("Where\u2019s my order #48213 🙂🚚", "wheres my order 48213"),
    ("snake_case\tand\nnew-lines", "snake case and new lines"),
    ("Straße", "strasse"),
    ("\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48", "fullwidth"),
    ("क्या आप रविवार को खुले हैं?", "क्या आप रविवार को खुले हैं"),  # Devanagari keeps its vowel signs and virama
])
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(("words", "stem"), [
    (["shipping", "shipped", "ships", "ship"], "ship"),
    (["returns", "returned", "returning", "return"], "return"),
    (["deliveries", "delivery"], "delivery"),
    (["opening", "open", "opens"], "open"),
    (["sizes", "size"], "siz"),
    (["addresses", "address"], "address"),
])
def test_fold_brings_word_forms_together(words: list[str], stem: str) -> None:
    assert {fold(word) for word in words} == {stem}


def test_fold_leaves_short_and_non_ascii_words() -> None:
    assert fold("bus") == "bus"
    assert fold("speed") == "speed"
    assert fold("livraison") == "livraison"
    assert fold("खुले") == "खुले"
    assert fold("4xl") == "4xl"


def test_tokenize_drops_stop_words_and_chat_fillers() -> None:
    assert tokenize("Hi! Could you please tell me how long shipping takes?") == ["long", "ship", "tak"]
    assert tokenize("I'm wondering, don't you ship to Canada?") == ["ship", "canada"]
    assert tokenize("Hello 👋 thanks!!") == []
    assert tokenize("") == []


def test_entry_strips_and_requires_text() -> None:
    entry = KnowledgeEntry(id=" a ", question="  Q?  ", answer=" A. ", keywords=["x"])
    assert (entry.id, entry.question, entry.answer, entry.keywords) == ("a", "Q?", "A.", ("x",))
    with pytest.raises(ValidationError):
        KnowledgeEntry(id="a", question="   ", answer="A.")
    with pytest.raises(ValidationError):
        KnowledgeEntry(id="a", question="Q?", answer="")


def test_search_text_holds_question_and_keywords_not_answer() -> None:
    entry = KnowledgeEntry(id="a", question="Opening hours?", answer="Nine to five.", keywords=("open", "closed"))
    assert entry.search_text() == "Opening hours? open closed"


def test_fingerprint_follows_content() -> None:
    a = KnowledgeEntry(id="a", question="Q?", answer="A.")
    b = KnowledgeEntry(id="b", question="R?", answer="B.")
    assert fingerprint([a, b]) == fingerprint([a.model_copy(), b.model_copy()])
    assert fingerprint([a, b]) != fingerprint([b, a])
    assert fingerprint([a, b]) != fingerprint([a, b.model_copy(update={"answer": "B!"})])
    assert fingerprint([a]) != fingerprint([a, b])


def test_knowledge_base_is_a_versioned_sequence() -> None:
    entries = [KnowledgeEntry(id=str(i), question=f"Question {i}?", answer=f"Answer {i}.") for i in range(3)]
    kb = KnowledgeBase(entries, tenant_id="t1")
    assert len(kb) == 3 and kb[1].id == "1" and [e.id for e in kb[1:]] == ["1", "2"]
    assert list(kb) == entries
    assert kb.version == fingerprint(entries)
    assert KnowledgeBase(entries, tenant_id="t1", version="rev-9").version == "rev-9"
    assert "t1" in repr(kb) and "entries=3" in repr(kb)
    entries.append(KnowledgeEntry(id="x", question="Later?", answer="Not in the base."))
    assert len(kb) == 3  # the base copied its entries
