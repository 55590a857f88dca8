"""A Graph call's outcome is recorded through a Redis restart instead of giving the request back (which would call
Meta again and, with Redis come back empty, send it twice uncounted: found by the chaos suite's redis-lost round)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.settings import DispatcherSettings
from dispatcher import sender as sender_module
from dispatcher.idempotency import State
from dispatcher.sender import RECORD_TRIES, Sender
from tests.unit.sleeps import record_sleeps


class _Idempotency:
    """Fails the first ``failures`` calls of ``finish`` as an unreachable Redis would, then records."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    async def finish(self, key: str, **fields: Any) -> bool:
        self.calls.append({"key": key, **fields})
        if len(self.calls) <= self.failures:
            error = RedisTimeoutError if len(self.calls) % 2 else RedisConnectionError
            raise error("cannot connect to Redis: [Errno 111] Connection refused")
        return True


class _Accounts:
    engine: Any = None


class _Scripts:
    """Enough of a script batcher to build a sender: these tests never reach Redis through it."""

    def register_script(self, _source: str) -> None:
        return None


def _sender(idempotency: _Idempotency) -> Sender:
    settings = DispatcherSettings(environment="test", vault_keys=SecretStr("k1:" + "A" * 44), rate_limits=False)
    sender = Sender(settings, accounts=_Accounts(), graph=None, campaigns=None,  # type: ignore[arg-type]
                    scripts=_Scripts())  # type: ignore[arg-type]
    sender.idempotency = idempotency  # type: ignore[assignment]
    return sender


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off waits, recorded instead of slept."""
    return record_sleeps(monkeypatch, sender_module)


async def test_an_accepted_send_is_recorded_once_redis_answers_again(waits: list[float]) -> None:
    idempotency = _Idempotency(failures=3)
    await _sender(idempotency)._record("t:k1", state=State.ACCEPTED, wamid="wamid.1", ambiguous=False)
    assert len(idempotency.calls) == 4
    assert idempotency.calls[-1] == {"key": "t:k1", "state": State.ACCEPTED, "wamid": "wamid.1", "ambiguous": False}
    assert waits == [0.1, 0.2, 0.4]


async def test_a_redis_that_stays_away_does_not_hold_back_the_result(waits: list[float]) -> None:
    idempotency = _Idempotency(failures=RECORD_TRIES + 5)
    await _sender(idempotency)._record("t:k2", state=State.DEFERRED, ambiguous=True)  # returns: no exception
    assert len(idempotency.calls) == RECORD_TRIES
    assert len(waits) == RECORD_TRIES - 1 and max(waits) == 1.0 and sum(waits) < 6
