"""Standard Webhooks signing: the spec's own example, rotation's two signatures, and refusals."""

from __future__ import annotations

import pytest

from webhooks.signing import SignatureError, generate_secret, headers, signature, verify

# The example of the Standard Webhooks specification (spec/standard-webhooks.md, "Signature scheme"), and of its
# reference libraries' tests: this secret, id, timestamp and body give this signature.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specification_example_signs_as_published() -> None:
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_the_example_and_refuses_a_changed_body_or_an_old_timestamp() -> None:
    sent = headers([SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    verify(SPEC_SECRET, sent, SPEC_BODY, now=SPEC_TIMESTAMP + 10)
    with pytest.raises(SignatureError):
        verify(SPEC_SECRET, sent, SPEC_BODY + b" ", now=SPEC_TIMESTAMP)
    with pytest.raises(SignatureError):
        verify(SPEC_SECRET, sent, SPEC_BODY, now=SPEC_TIMESTAMP + 301)
    with pytest.raises(SignatureError):
        verify(generate_secret(), sent, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new, old = generate_secret(), generate_secret()
    sent = headers([new, old], "evt_1", 100, b"{}")
    assert len(sent["webhook-signature"].split()) == 2
    verify(new, sent, b"{}", now=100)
    verify(old, sent, b"{}", now=100)


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    a, b = generate_secret(), generate_secret()
    assert a.startswith("whsec_") and a != b and len(a) == len("whsec_") + 44
