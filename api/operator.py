"""The platform operator's view of dead letters: ``GET /admin/dead-letters`` (platform key only).

How many records each consumer group set aside, and the latest ones with where they came from and
why (from the projector's ``dead_letters`` table); ``aerostic dlq`` shows and replays the records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from api.deps import EngineDep
from api.platform import require_platform
from db.tables import dead_letters
from schemas.catalogue import GROUPS

router = APIRouter(prefix="/admin", tags=["platform"], dependencies=[Depends(require_platform)])


class DeadLetterPublic(BaseModel):
    group: str = Field(max_length=200)
    source_topic: str = Field(max_length=300)
    partition: int
    offset: int
    part: str | None = Field(None, max_length=300)
    error_type: str = Field(max_length=200)
    error: str = Field(max_length=2000)
    failed_at: datetime


class DeadLetterReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "counts": {"projector": 1, "dispatcher": 0},
                "latest": [
                    {
                        "group": "projector", "source_topic": "aerostic.inbound", "partition": 3, "offset": 18211,
                        "part": None, "error_type": "ValidationError",
                        "error": "1 validation error for InboundEvent: wa_id: field required",
                        "failed_at": "2026-12-01T09:14:03Z",
                    },
                ],
            },
        ]})

    counts: dict[str, int]  # every group of the catalogue, 0 included
    latest: list[DeadLetterPublic] = Field(max_length=200)


@router.get("/dead-letters")
async def get_dead_letters(engine: EngineDep, limit: Annotated[int, Query(ge=1, le=200)] = 20,
                           group: Annotated[str | None, Query(max_length=200)] = None) -> DeadLetterReport:
    """Dead letters per consumer group, and the latest ``limit`` (of ``group``, if given), newest first."""
    latest = select(dead_letters).order_by(dead_letters.c.failed_at.desc(), dead_letters.c.event_id).limit(limit)
    if group is not None:
        latest = latest.where(dead_letters.c.consumer_group == group)
    async with engine.connect() as conn:  # one snapshot: the counts include every letter listed
        await conn.execution_options(isolation_level="REPEATABLE READ")
        counted: dict[str, int] = dict((await conn.execute(select(dead_letters.c.consumer_group, func.count()).group_by(
            dead_letters.c.consumer_group))).tuples().all())
        rows = (await conn.execute(latest)).all()
    return DeadLetterReport(
        counts={g: int(counted.get(g, 0)) for g in (*GROUPS, *sorted(set(counted) - set(GROUPS)))},
        latest=[DeadLetterPublic(group=r.consumer_group, source_topic=r.source_topic, partition=r.source_partition,
                                 offset=r.source_offset, part=r.part, error_type=r.error_type, error=r.error,
                                 failed_at=r.failed_at) for r in rows])
