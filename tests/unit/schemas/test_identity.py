"""schemas.identity: one person per tenant whether Meta names them by number, by BSUID or both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.identity import Identity, canonical, is_bsuid
from schemas.outbound import OutboundRequest

PHONE, BSUID, NEW_PHONE = "16505551234", "US.13491208655302741918", "16505559999"


@pytest.mark.parametrize(("value", "expected"), [
    (BSUID, True), ("US.ENT.11815799212886844830", True), ("BR.123abc", True), (PHONE, False), ("", False),
    (None, False), ("us.123", False), ("US.", False), ("US.12 3", False), ("+16505551234", False)])
def test_a_bsuid_is_told_from_a_number(value: str | None, expected: bool) -> None:
    assert is_bsuid(value) is expected


def test_a_new_person_is_keyed_by_their_number_when_meta_gives_one_and_every_name_is_recorded() -> None:
    assert canonical(Identity(PHONE, BSUID), {}) == (PHONE, {PHONE: PHONE, BSUID: PHONE})
    assert canonical(Identity(PHONE, None), {}) == (PHONE, {PHONE: PHONE})


def test_a_username_only_person_is_keyed_by_their_bsuid_and_keeps_it_when_they_share_a_number() -> None:
    assert canonical(Identity(None, BSUID, "fan"), {}) == (BSUID, {BSUID: BSUID})
    assert canonical(Identity(PHONE, BSUID), {BSUID: BSUID}) == (BSUID, {PHONE: BSUID})
    assert canonical(Identity(PHONE, None), {PHONE: BSUID}) == (BSUID, {})  # later, by number alone


def test_a_conversation_keyed_by_number_keeps_its_key_when_a_bsuid_appears_and_across_number_changes() -> None:
    # A number seen before BSUIDs existed has no record yet: the number stays the key.
    assert canonical(Identity(PHONE, BSUID), {}) == (PHONE, {PHONE: PHONE, BSUID: PHONE})
    assert canonical(Identity(None, BSUID), {BSUID: PHONE}) == (PHONE, {})
    # The person moves to a new number: the BSUID is stable, the conversation too.
    assert canonical(Identity(NEW_PHONE, BSUID), {BSUID: PHONE}) == (PHONE, {NEW_PHONE: PHONE})


def test_records_are_never_re_pointed_and_the_bsuid_wins_a_conflict() -> None:
    chosen, records = canonical(Identity(PHONE, BSUID), {PHONE: PHONE, BSUID: "US.999"})
    assert (chosen, records) == ("US.999", {})


def _request(to: str) -> OutboundRequest:
    return OutboundRequest(event_id="m", tenant_id="t", message_id="m", idempotency_key="k", phone_number_id="1",
                           to=to, message={"type": "text", "text": {"body": "hi"}, "recipient": "US.666"},
                           created_at=datetime.now(UTC))


def test_graph_is_told_the_recipient_by_number_or_by_bsuid_never_by_the_message() -> None:
    by_number, by_bsuid = _request(PHONE).graph_body(), _request(BSUID).graph_body()
    assert by_number["to"] == PHONE and "recipient" not in by_number
    assert by_bsuid["recipient"] == BSUID and "to" not in by_bsuid
