"""Number profiles: concurrent sends share one read per number; a forgotten read is never cached."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dispatcher.accounts import Accounts, NumberProfile


def profile(status: str = "connected") -> NumberProfile:
    return NumberProfile(phone_number_id="p1", tenant_id="t1", waba_id="w1", business_id=None, throughput_mps=80,
                         tier_limit=None, account_status=status, token_ciphertext=b"x", token_key_id="k")


class Reads(Accounts):
    """Accounts whose PostgreSQL read is a counted step that the test releases."""

    def __init__(self, **options: Any) -> None:
        super().__init__(engine=None, vault=None, **options)  # type: ignore[arg-type]
        self.reads = 0
        self.release = asyncio.Event()
        self.answer: NumberProfile | Exception = profile()

    async def _read(self, phone_number_id: str) -> NumberProfile | None:
        self.reads += 1
        await self.release.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_concurrent_lookups_share_one_read() -> None:
    accounts = Reads()
    lookups = [asyncio.ensure_future(accounts.profile("p1")) for _ in range(100)]
    await asyncio.sleep(0)
    accounts.release.set()
    assert await asyncio.gather(*lookups) == [profile()] * 100
    assert accounts.reads == 1
    assert await accounts.profile("p1") == profile() and accounts.reads == 1  # cached


async def test_a_read_under_way_when_forgotten_is_not_cached() -> None:
    accounts = Reads()
    first = asyncio.ensure_future(accounts.profile("p1"))
    await asyncio.sleep(0)
    accounts.forget("p1")  # say the account was just marked needs_reauth
    accounts.answer = profile("needs_reauth")
    second = asyncio.ensure_future(accounts.profile("p1"))
    await asyncio.sleep(0)
    accounts.release.set()
    await first
    assert await second == profile("needs_reauth")
    assert accounts.reads == 2
    assert await accounts.profile("p1") == profile("needs_reauth")


async def test_a_failed_read_fails_its_waiters_and_is_tried_again() -> None:
    accounts = Reads()
    accounts.answer = ConnectionError("PostgreSQL is down")
    accounts.release.set()
    with pytest.raises(ConnectionError):
        await asyncio.gather(accounts.profile("p1"), accounts.profile("p1"))
    accounts.answer = profile()
    assert await accounts.profile("p1") == profile()
    assert accounts.reads == 2
