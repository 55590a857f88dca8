"""api.console.labels: Meta's codes read as words, Meta's own value kept on hover."""

from __future__ import annotations

import pytest

from api.console.labels import KINDS, label, meta_span, script_tables
from api.console.templating import templates


@pytest.mark.parametrize(("kind", "value", "text"), [
    ("quality", "GREEN", "High"), ("quality", "YELLOW", "Medium"), ("quality", "RED", "Low"),
    ("quality", "UNKNOWN", "Not yet rated"),
    ("tier", "TIER_250", "250 customers a day"), ("tier", "TIER_1K", "1,000 customers a day"),
    ("tier", "TIER_2K", "2,000 customers a day"), ("tier", "TIER_10K", "10,000 customers a day"),
    ("tier", "TIER_100K", "100,000 customers a day"), ("tier", "TIER_UNLIMITED", "Unlimited customers a day"),
    ("throughput", "STANDARD", "80 messages/s"), ("throughput", "HIGH", "1,000 messages/s"),
    ("throughput", 80, "80 messages/s"), ("throughput", 1000, "1,000 messages/s"),
    ("throughput", 250, "250 messages/s"),
    ("template_status", "APPROVED", "Approved"), ("template_status", "PENDING", "In review"),
    ("template_status", "PENDING_DELETION", "Being deleted"), ("template_category", "UTILITY", "Utility"),
    ("name_status", "PENDING_REVIEW", "In review"), ("account_review", "REJECTED", "Rejected"),
])
def test_each_code_reads_as_words(kind: str, value: object, text: str) -> None:
    assert label(kind, value) == text


def test_an_unlisted_code_reads_as_its_words_and_none_as_a_dash() -> None:
    assert label("template_status", "SOME_NEW_STATE") == "Some new state"
    assert label("quality", None) == "—" and label("tier", "") == "—"
    with pytest.raises(KeyError):
        label("nonsense", "GREEN")


def test_the_span_keeps_metas_value_on_hover_and_escapes() -> None:
    assert str(meta_span("GREEN", "quality")) == '<span class="meta-value" title="GREEN" data-meta="GREEN">High</span>'
    assert str(meta_span(80, "throughput")) == ('<span class="meta-value" title="STANDARD" data-meta="STANDARD">'
                                                "80 messages/s</span>")
    assert "<b>" not in str(meta_span("<b>X</b>", "template_status"))
    assert str(meta_span(None, "tier")) == '<span class="meta-missing">—</span>'


def test_templates_use_the_filter_and_scripts_get_the_same_tables() -> None:
    rendered = templates.env.from_string('{{ q | meta("quality") }}').render(q="YELLOW")
    assert rendered == '<span class="meta-value" title="YELLOW" data-meta="YELLOW">Medium</span>'
    tables = script_tables()
    assert tables["kinds"] == {kind: dict(table) for kind, table in KINDS.items()}
    assert tables["throughput_levels"] == {"80": "STANDARD", "1000": "HIGH", "20": "COEXISTENCE"}
