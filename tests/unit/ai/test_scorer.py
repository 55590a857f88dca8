"""The offline scorer: right answers for paraphrases, low confidence for the rest, one index per version."""

from __future__ import annotations

import random

import pytest

from ai.knowledge import KnowledgeBase, KnowledgeEntry, tokenize
from ai.provider import decide
from ai.scorer import OfflineScorer
from tests.unit.ai.kb import SHOP_ENTRIES, shop_kb

THRESHOLD = 0.70
ANSWERS = {entry.id: entry.answer for entry in SHOP_ENTRIES}

PARAPHRASES = [
    ("hi! how long does shipping usually take to Munich?", "shipping-time"),
    ("How long will the delivery take?", "shipping-time"),
    ("what does delivery cost?", "shipping-cost"),
    ("Is shipping free?", "shipping-cost"),
    ("when do I get my money back?", "refunds"),
    ("I want to send back the item", "returns"),
    ("are you open on saturday?", "opening-hours"),
    ("what are your hours on the weekend", "opening-hours"),
    ("can I pay with paypal?", "payment-methods"),
    ("Do you take credit cards?", "payment-methods"),
    ("where is my order?", "order-tracking"),
    ("Where is my order 48213??", "order-tracking"),
    ("where's my parcel", "order-tracking"),
    ("I changed my mind, can I cancel?", "cancel-order"),
    ("what size should I take, how does it fit?", "size-guide"),
    ("I have a promo code, how do I use it?", "discount-code"),
    ("do you have gift cards?", "gift-cards"),
    ("what is your store address?", "store"),
    ("the shoes arrived broken", "damaged"),
]
UNRELATED = [
    "can you fix my car engine",
    "can you fix my car engine, it is broken",
    "what's the weather like in Lisbon tomorrow?",
    "who won the football match yesterday",
    "tell me a joke",
]
AMBIGUOUS = [
    ("where is my order? it should have arrived by now", {"order-tracking", "shipping-time"}),
    ("my refund for the return", {"returns", "refunds"}),
    ("shipping?", {"shipping-cost", "international"}),
    ("do you ship to switzerland?", {"shipping-cost", "international"}),
]


@pytest.mark.parametrize(("question", "expected"), PARAPHRASES)
def test_paraphrase_gets_the_right_answer_confidently(
    scorer: OfflineScorer, kb: KnowledgeBase, question: str, expected: str
) -> None:
    answer = scorer.score(question, kb)
    assert answer.reply == ANSWERS[expected], answer.reason
    assert answer.confidence >= THRESHOLD, answer.reason
    assert expected in answer.reason
    assert decide(answer, THRESHOLD)[0] == "reply"


@pytest.mark.parametrize("question", UNRELATED)
def test_unrelated_question_is_handed_over(scorer: OfflineScorer, kb: KnowledgeBase, question: str) -> None:
    answer = scorer.score(question, kb)
    assert answer.confidence < THRESHOLD, answer.reason
    assert decide(answer, THRESHOLD)[0] == "handoff"


def test_no_shared_word_means_zero_and_no_reply(scorer: OfflineScorer, kb: KnowledgeBase) -> None:
    answer = scorer.score("can you fix my car engine", kb)
    assert (answer.reply, answer.confidence) == (None, 0.0)
    assert "no knowledge-base entry shares a word" in answer.reason
    assert decide(answer, THRESHOLD) == ("handoff", f"no reply: {answer.reason}")


def test_one_shared_word_among_unknown_ones_stays_low(scorer: OfflineScorer, kb: KnowledgeBase) -> None:
    answer = scorer.score("can you fix my car engine, it is broken", kb)
    assert answer.reply == ANSWERS["damaged"]  # "broken" is a keyword of the damaged-item entry…
    assert answer.confidence < 0.5  # …but car, engine and fix are words the shop never heard of


@pytest.mark.parametrize(("question", "rivals"), AMBIGUOUS)
def test_ambiguous_question_is_reduced_and_names_both(
    scorer: OfflineScorer, kb: KnowledgeBase, question: str, rivals: set[str]
) -> None:
    answer = scorer.score(question, kb)
    assert answer.reason.startswith("ambiguous between"), answer.reason
    assert all(rival in answer.reason for rival in rivals), answer.reason
    assert answer.confidence < THRESHOLD
    outcome, reason = decide(answer, THRESHOLD)
    assert outcome == "handoff" and "ambiguous between" in reason


def test_ambiguity_reduction_is_the_proportional_share(kb: KnowledgeBase) -> None:
    """With the margin off, the same question keeps its full confidence; with it, best * best / (best + rival)."""
    plain = OfflineScorer(ambiguity_margin=0.0).score("my refund for the return", kb)
    reduced = OfflineScorer().score("my refund for the return", kb)
    assert not plain.reason.startswith("ambiguous")
    ranked = OfflineScorer().rank("my refund for the return", kb, k=2)
    best, rival = sorted((m.confidence for m in ranked), reverse=True)
    assert plain.confidence == pytest.approx(best)
    assert reduced.confidence == pytest.approx(best * best / (best + rival))
    assert reduced.confidence < plain.confidence


def test_entries_with_the_same_answer_are_not_rivals(scorer: OfflineScorer) -> None:
    kb = KnowledgeBase([
        KnowledgeEntry(id="hours-1", question="What are your opening hours?", answer="Nine to five, Monday to Friday."),
        KnowledgeEntry(id="hours-2", question="When are you open?", answer="Nine to five, monday to friday"),
        KnowledgeEntry(id="pay", question="Which payment methods do you accept?", answer="Cards and PayPal."),
    ])
    answer = scorer.score("when are you open", kb)
    assert answer.reply is not None and answer.reply.startswith("Nine to five")
    assert not answer.reason.startswith("ambiguous")
    assert answer.confidence >= THRESHOLD


def test_general_question_prefers_the_general_entry(scorer: OfflineScorer) -> None:
    kb = KnowledgeBase([
        KnowledgeEntry(id="returns", question="How do I return an item?", answer="Use the returns form."),
        KnowledgeEntry(id="sale", question="Can I return a sale item?", answer="Sale items cannot be returned."),
        KnowledgeEntry(id="pay", question="Which payment methods do you accept?", answer="Cards and PayPal."),
    ])
    general = scorer.score("how do I return an item", kb)
    specific = scorer.score("can I return an item I bought on sale?", kb)
    assert (general.reply, general.confidence) == ("Use the returns form.", 1.0)
    assert specific.reply == "Sale items cannot be returned." and specific.confidence >= THRESHOLD


def test_only_a_more_specific_entry_is_not_enough() -> None:
    kb = KnowledgeBase([
        KnowledgeEntry(id="sale", question="Can I return a sale item?", answer="Sale items cannot be returned."),
        KnowledgeEntry(id="pay", question="Which payment methods do you accept?", answer="Cards and PayPal."),
    ])
    assert OfflineScorer().score("how do I return it?", kb).confidence < THRESHOLD


def test_unknown_numbers_do_not_lower_confidence(scorer: OfflineScorer, kb: KnowledgeBase) -> None:
    plain = scorer.score("where is my order?", kb)
    with_number = scorer.score("where is my order 4821377?", kb)
    assert with_number.confidence == pytest.approx(plain.confidence)
    assert scorer.score("where is my order? it's a zebra", kb).confidence < plain.confidence


@pytest.mark.parametrize(("question", "reason"), [
    ("", "the question has no searchable words"),
    ("   ", "the question has no searchable words"),
    ("Hi! Thanks 🙏", "the question has no searchable words"),
    ("?!", "the question has no searchable words"),
])
def test_empty_question_scores_zero(scorer: OfflineScorer, kb: KnowledgeBase, question: str, reason: str) -> None:
    answer = scorer.score(question, kb)
    assert (answer.reply, answer.confidence, answer.reason) == (None, 0.0, reason)


@pytest.mark.parametrize("knowledge", [[], KnowledgeBase([], tenant_id="t")])
def test_empty_knowledge_base_scores_zero(scorer: OfflineScorer, knowledge: list[KnowledgeEntry]) -> None:
    answer = scorer.score("how long does shipping take?", knowledge)
    assert (answer.reply, answer.confidence, answer.reason) == (None, 0.0, "the knowledge base is empty")
    assert scorer.rank("shipping", knowledge) == []


def test_entries_without_searchable_words_are_harmless(scorer: OfflineScorer) -> None:
    kb = KnowledgeBase([
        KnowledgeEntry(id="noise", question="???", answer="Nothing."),
        KnowledgeEntry(id="hours", question="What are your opening hours?", answer="Nine to five."),
    ])
    assert scorer.score("opening hours", kb).reply == "Nine to five."
    only_noise = KnowledgeBase([KnowledgeEntry(id="noise", question="Hi!", answer="Hello.")])
    assert scorer.score("opening hours", only_noise).confidence == 0.0


def test_other_scripts_match_on_whole_words(scorer: OfflineScorer) -> None:
    kb = KnowledgeBase([
        KnowledgeEntry(id="sunday", question="क्या आप रविवार को खुले हैं?", answer="हाँ, रविवार 10 से 4 बजे तक।"),
        KnowledgeEntry(id="livraison", question="Quels sont vos délais de livraison ?", answer="3 à 5 jours ouvrés."),
    ])
    assert scorer.score("रविवार को खुले हैं?", kb).reply == "हाँ, रविवार 10 से 4 बजे तक।"
    assert scorer.score("délais de livraison?", kb).reply == "3 à 5 jours ouvrés."


def test_rank_returns_bm25_order_best_first(scorer: OfflineScorer, kb: KnowledgeBase) -> None:
    ranked = scorer.rank("how long does shipping take and what does it cost", kb, k=3)
    assert [m.entry.id for m in ranked][:2] == ["shipping-time", "shipping-cost"]
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)
    assert len(scorer.rank("shipping", kb, k=1)) == 1
    assert scorer.rank("zebra", kb) == []


def test_confidence_is_always_within_bounds(scorer: OfflineScorer, kb: KnowledgeBase) -> None:
    rng = random.Random(5)
    words = sorted({w for e in SHOP_ENTRIES for w in (e.question + " " + " ".join(e.keywords)).split()})
    words += ["zebra", "engine", "48213", "🙂", "shipping!!", "é"]
    for _ in range(500):
        question = " ".join(rng.choices(words, k=rng.randint(1, 9)))
        answer = scorer.score(question, kb)
        assert 0.0 <= answer.confidence <= 1.0, question
        assert (answer.reply is None) == (answer.confidence == 0.0), question


def test_index_is_rebuilt_only_when_the_version_changes(scorer: OfflineScorer) -> None:
    scorer.score("shipping time", shop_kb(version="v1"))
    scorer.score("opening hours", shop_kb(version="v1"))
    scorer.score("opening hours", shop_kb(version="v1"))  # a new object at the same version: same index
    assert scorer.index_builds == 1
    edited = [*SHOP_ENTRIES[:-1], KnowledgeEntry(id="hours", question="Are you open on Sunday?", answer="No.")]
    v2 = KnowledgeBase(edited, tenant_id="shop", version="v2")
    assert scorer.score("open sunday", v2).reply == "No."
    assert scorer.index_builds == 2
    assert scorer.score("open sunday", v2).reply == "No."
    scorer.score("open sunday", shop_kb(tenant_id="other-shop", version="v2"))  # another tenant has its own
    assert scorer.index_builds == 3
    scorer.score("open sunday", v2)  # and the first tenant's stays cached
    assert scorer.index_builds == 3


def test_plain_sequences_are_cached_by_content(scorer: OfflineScorer) -> None:
    scorer.score("shipping time", list(SHOP_ENTRIES))
    scorer.score("opening hours", list(SHOP_ENTRIES))
    assert scorer.index_builds == 1
    scorer.score("opening hours", list(SHOP_ENTRIES[:5]))
    assert scorer.index_builds == 2


def test_fingerprinted_version_changes_with_content(scorer: OfflineScorer) -> None:
    scorer.score("shipping time", shop_kb())
    scorer.score("shipping time", shop_kb())
    assert scorer.index_builds == 1
    edited = [e.model_copy(update={"keywords": (*e.keywords, "express")}) for e in SHOP_ENTRIES]
    scorer.score("shipping time", KnowledgeBase(edited, tenant_id="shop"))
    assert scorer.index_builds == 2


def test_least_recently_used_tenant_is_evicted() -> None:
    scorer = OfflineScorer(max_indexes=2)
    for tenant in ("a", "b", "a", "c", "a"):
        scorer.score("shipping time", shop_kb(tenant_id=tenant, version="1"))
    assert scorer.index_builds == 3  # a, b, c; "a" was used last and stayed
    scorer.score("shipping time", shop_kb(tenant_id="b", version="1"))
    assert scorer.index_builds == 4  # b had been evicted


async def test_answer_is_the_provider_interface(scorer: OfflineScorer, kb: KnowledgeBase) -> None:
    assert scorer.name == "offline"
    answer = await scorer.answer("where is my order?", [], kb)
    assert answer == scorer.score("where is my order?", kb)
    await scorer.aclose()


def test_margin_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="ambiguity_margin"):
        OfflineScorer(ambiguity_margin=1.5)


def test_tokens_of_the_shop_questions_are_meaningful() -> None:
    """Guard the stop-word list: every shop question keeps at least one searchable word."""
    assert all(tokenize(entry.question) for entry in SHOP_ENTRIES)
