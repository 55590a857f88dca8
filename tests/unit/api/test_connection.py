"""api.connection: the console's overall connection state."""

from __future__ import annotations

from api.connection import Account, Attempt, overall_state


def _attempt(status: str) -> Attempt:
    return Attempt(attempt_id="a", status=status, step=None, error_code=None, error_message=None,  # type: ignore[arg-type]
                   requested_at=None, finished_at=None)


def _account(status: str) -> Account:
    return Account(waba_id="W", name=None, business_id=None, status=status, status_reason=None)


def test_overall_state() -> None:
    assert overall_state(None, []) == "not_connected"
    assert overall_state(_attempt("pending"), [_account("connected")]) == "pending"
    assert overall_state(_attempt("failed"), []) == "failed"
    assert overall_state(_attempt("failed"), [_account("connected")]) == "connected"
    assert overall_state(None, [_account("connected"), _account("needs_reauth")]) == "needs_reauth"
    assert overall_state(_attempt("connected"), [_account("disconnected")]) == "disconnected"
