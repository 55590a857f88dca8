"""The semantic AI through the real stack: the worker's sentence model answering customers, small talk,
knowledge-base edits, the evaluation and calibration API, knowledge gaps and the workers' status."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ai.small_talk import SmallTalk
from tests.integration.helpers import Business, BusinessFactory, customer_writes, rows, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

ATM = "Call us on 0800 123 so we block the card; a new one arrives within 5 days."
HOURS = "Our branches are open 9 to 5 on weekdays."
ENTRIES = [
    {"question": "the ATM kept my card", "answer": ATM},
    {"question": "I can't get my card out of the cash machine", "answer": ATM},
    {"question": "How do I reset my online banking password?", "answer": "Choose 'Forgot password' on the login page."},
    {"question": "What are your opening hours?", "answer": HOURS},
    {"question": "How long does a bank transfer take?", "answer": "Transfers arrive the next business day."},
]
OUT_OF_SCOPE = ["what is the capital of Peru?", "recommend a good pizza place"]


async def _bank(api: httpx.AsyncClient, business_factory: BusinessFactory) -> tuple[Business, dict[str, str]]:
    business = await business_factory("bank")
    ids = {}
    for entry in ENTRIES:
        made = await api.post("/v1/knowledge", headers=business.auth, json=entry)
        assert made.status_code == 201, made.text
        ids[entry["question"]] = made.json()["id"]
    return business, ids


async def _sent_to(sim: httpx.AsyncClient, business: Business, wa_id: str) -> list[str]:
    answer = await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})
    return [e["body"]["text"]["body"] for e in answer.json()["data"]
            if e["recipient"] == wa_id and e["status"] == 200 and e["body"].get("type") == "text"]


async def _outcome(db: AsyncEngine, business: Business, wa_id: str, count: int = 1) -> dict[str, Any]:
    async def found() -> list[Any] | None:
        got = await rows(db, "SELECT payload FROM conversation_events WHERE tenant_id = :t AND conversation_key = :k "
                             "AND kind = 'ai_outcome' ORDER BY id", t=business.tenant_id,
                         k=business.conversation(wa_id))
        return got if len(got) >= count else None

    return dict((await wait_for(found, what=f"AI outcome {count} of {wa_id}"))[count - 1].payload)


async def test_customers_get_semantic_answers_small_talk_and_edits_and_gaps_are_counted(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    bank, ids = await _bank(api, business_factory)
    greeting = "Welcome to Example Bank! How can we help?"
    saved = await api.put("/v1/settings/small-talk", headers=bank.auth, json={"greeting": greeting})
    assert saved.status_code == 200 and saved.json()["thanks"] == SmallTalk().thanks  # the others keep defaults
    assert (await api.get("/v1/settings/small-talk", headers=bank.auth)).json()["greeting"] == greeting
    bad = await api.put("/v1/settings/small-talk", headers=bank.auth, json={"greeting": "x" * 1001})
    assert bad.status_code == 422 and "greeting" in bad.text

    # A paraphrase BM25 could not answer, then small talk, in one conversation that stays with the bot.
    customer = "919810000001"
    await customer_writes(sim, db, bank, customer, text="my card got eaten by the ATM")
    outcome = await _outcome(db, bank, customer)
    assert outcome["outcome"] == "reply" and outcome["applied"], outcome
    await customer_writes(sim, db, bank, customer, text="hello!")
    assert (await _outcome(db, bank, customer, 2))["reason"] == "small talk: greeting"

    async def replies() -> list[str] | None:
        sent = await _sent_to(sim, bank, customer)
        return sent if len(sent) >= 2 else None

    assert await wait_for(replies, what="both replies at Meta") == [ATM, greeting]

    # The next question after an edit gets the edited answer.
    edited = "From Monday our branches are open 8 to 8, every day."
    hours_id = ids["What are your opening hours?"]
    replaced = await api.put(f"/v1/knowledge/{hours_id}", headers=bank.auth,
                             json={"question": "What are your opening hours?", "answer": edited})
    assert replaced.status_code == 200, replaced.text
    await customer_writes(sim, db, bank, "919810000002", text="when do you open?")
    assert await wait_for(lambda: _sent_to(sim, bank, "919810000002"), what="the edited answer") == [edited]

    # Out of scope: handed over, and counted among the knowledge gaps.
    for n, text in enumerate(["recommend a good pizza place", "where can I get good pizza nearby"]):
        await customer_writes(sim, db, bank, f"91981000001{n}", text=text)
        handed = await _outcome(db, bank, f"91981000001{n}")
        assert handed["outcome"] == "handoff" and "knowledge-base entry" in handed["reason"], handed
    gaps = await api.get("/v1/ai/gaps", headers=bank.auth, params={"days": 1})
    assert gaps.status_code == 200, gaps.text
    body = gaps.json()
    assert body["grouped_by"] == "meaning" and body["handed_over"] == 2
    [gap] = body["items"]
    assert gap["count"] == 2 and set(gap["examples"]) == {"recommend a good pizza place",
                                                         "where can I get good pizza nearby"}
    assert (await api.get("/v1/ai/gaps", headers=bank.auth, params={"days": 0})).status_code == 422

    other, _ = await _bank(api, business_factory)  # another tenant sees none of it
    assert (await api.get("/v1/ai/gaps", headers=other.auth)).json()["items"] == []

    status = (await api.get("/v1/ai/status", headers=bank.auth)).json()
    assert status["workers"] and all(w["offline"]["provider"] == "semantic" for w in status["workers"])
    assert status["api"]["offline"]["provider"] == "semantic"


async def test_the_evaluation_api_reports_figures_on_labelled_questions(
        api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    bank, ids = await _bank(api, business_factory)
    questions = [{"text": "my card got eaten by the ATM", "entry_id": ids["the ATM kept my card"]},
                 {"text": "when do you open?", "answer": HOURS}] + [{"text": t} for t in OUT_OF_SCOPE]
    semantic = await api.post("/v1/ai/evaluate", headers=bank.auth, json={"questions": questions})
    assert semantic.status_code == 200, semantic.text
    report = semantic.json()
    assert report["provider"] == "semantic" and report["threshold"] == 0.7
    assert (report["in_scope"], report["out_of_scope"]) == (2, 2) and len(report["curve"]) == 21
    assert report["at_threshold"] == {"threshold": 0.7, "in_scope_accuracy": 1.0, "coverage": 1.0, "precision": 1.0,
                                      "precision_all": 1.0, "oos_recall": 1.0}
    lexical = (await api.post("/v1/ai/evaluate", headers=bank.auth,
                              json={"questions": questions, "provider": "lexical"})).json()
    assert lexical["provider"] == "offline" and lexical["at_threshold"]["in_scope_accuracy"] == 0.0

    given = await api.post("/v1/ai/evaluate", headers=bank.auth, json={
        "entries": [{"question": "Do you sell gift cards?", "answer": "Yes, from 10 EUR."}], "threshold": 0.5,
        "questions": [{"text": "can I buy a gift voucher", "answer": "Yes, from 10 EUR."}, {"text": OUT_OF_SCOPE[0]}]})
    assert given.status_code == 200, given.text
    assert given.json()["threshold"] == 0.5 and given.json()["at_threshold"]["in_scope_accuracy"] == 1.0

    for body, field in [({"questions": [{"text": "q"}] * 501}, "questions"),
                        ({"questions": [{"text": "q", "entry_id": "nope"}]}, "entry_id"),
                        ({"questions": [{"text": "q", "answer": "a", "entry_id": "b"}]}, "entry_id"),
                        ({"questions": [{"text": "q"}], "threshold": 2}, "threshold"),
                        ({"questions": [{"text": "q"}], "provider": "gpt"}, "provider")]:
        refused = await api.post("/v1/ai/evaluate", headers=bank.auth, json=body)
        assert refused.status_code == 422 and field in refused.text, (field, refused.text)
    assert (await api.post("/v1/ai/evaluate", json={"questions": questions})).status_code == 401


async def test_calibration_tells_the_tenant_what_to_expect_at_its_threshold(
        api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    bank, _ = await _bank(api, business_factory)
    calibration = await api.get("/v1/ai/calibration", headers=bank.auth)
    assert calibration.status_code == 200, calibration.text
    body = calibration.json()
    assert body["provider"] == "semantic" and body["threshold"] == 0.7
    # The two ATM entries answer for each other; the three others have no second phrasing.
    assert (body["answerable"], body["unanswerable"]) == (2, 3)
    assert body["expected_precision"] == 1.0 and body["expected_coverage"] == 1.0
    assert body["expected_oos_recall"] == 1.0 and 0.0 <= body["suggested_threshold"] <= 0.7
