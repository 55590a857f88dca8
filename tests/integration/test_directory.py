"""The tenant directory reads to the real end of ``tenants.directory`` even when the broker under-reports its
high watermark (the embedded broker does): a number attached a moment ago is found on the next sync."""

from __future__ import annotations

import asyncio
from typing import Any

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from schemas.catalogue import TENANTS_DIRECTORY
from schemas.events import DirectoryEntry
from streams.directory import TenantDirectory
from tests.integration.helpers import fresh_id


class UnderReporting:
    """The directory's metadata consumer, as a broker that reports every high watermark as 0."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def get_watermark_offsets(self, *_args: Any, **_kwargs: Any) -> tuple[int, int]:
        return 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_a_number_attached_just_before_a_sync_is_found(settings: CoreSettings, producer: AsyncProducer) -> None:
    directory = TenantDirectory(settings, TENANTS_DIRECTORY.full_name(settings.topic_prefix))
    directory._meta = UnderReporting(directory._meta)  # type: ignore[assignment]
    await asyncio.to_thread(directory.start, 30.0)
    try:
        for _ in range(3):
            number, tenant = fresh_id(), fresh_id()
            entry = DirectoryEntry.owned(number, tenant, waba_id=fresh_id(), display_phone_number=None)
            await producer.send(TENANTS_DIRECTORY.name, entry.encode(), number)
            assert await asyncio.to_thread(directory.sync, 10.0)
            assert directory.lookup(number) == tenant
    finally:
        await asyncio.to_thread(directory.stop)
