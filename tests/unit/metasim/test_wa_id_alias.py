"""A number Meta knows by another WhatsApp id: the send's answer and its statuses name that id."""

from __future__ import annotations

import pytest

from contacts.adoption import adopts
from tests.unit.metasim.test_app import harness, template

DIALLED, METAS = "5511987654321", "551187654321"


async def test_a_send_to_the_number_answers_with_metas_wa_id() -> None:
    async with harness() as h:
        alias = await h.client.post("/_sim/customers/wa_ids", json={"number": DIALLED, "wa_id": METAS})
        assert alias.status_code == 200, alias.text
        response = await h.send(template(to=f"+{DIALLED}"))
        assert response.status_code == 200, response.text
        assert response.json()["contacts"] == [{"input": f"+{DIALLED}", "wa_id": METAS}]
        assert {s["recipient_id"] for s in await h.statuses()} == {METAS}
        # Another number is answered with its own digits.
        other = await h.send(template(to="+15551239999"))
        assert other.json()["contacts"][0]["wa_id"] == "15551239999"


@pytest.mark.parametrize("body", [{"number": "+5511987654321", "wa_id": METAS}, {"number": DIALLED, "wa_id": "x"},
                                  {"number": DIALLED}])
async def test_a_bad_alias_is_refused(body: dict[str, str]) -> None:
    async with harness() as h:
        response = await h.client.post("/_sim/customers/wa_ids", json=body)
        assert response.status_code == 422, response.text
        sent = await h.send(template(to=DIALLED))
        assert sent.json()["contacts"][0]["wa_id"] == DIALLED


def test_only_another_id_for_a_number_is_adopted() -> None:
    assert adopts(DIALLED, METAS)
    assert not adopts(DIALLED, DIALLED) and not adopts(DIALLED, None) and not adopts(DIALLED, "")
    assert not adopts("US.12345678901234567890", METAS) and not adopts(DIALLED, "US.12345678901234567890")
