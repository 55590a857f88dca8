"""When a campaign may send: a start time in an IANA time zone and optional quiet hours in that zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


class QuietHours(BaseModel):
    """No sends from ``start`` to ``end`` local time (may wrap past midnight, e.g. 21:00-09:00)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours must not start and end at the same time")
        return self

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Schedule(BaseModel):
    """``send_at`` (naive: read in ``timezone``; aware: as given), ``timezone`` and optional quiet hours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    send_at: datetime | None = None
    timezone: str = Field(default="UTC", max_length=64)
    quiet_hours: QuietHours | None = None

    @field_validator("timezone")
    @classmethod
    def _known(cls, value: str) -> str:
        _zone(value)
        return value

    def start_utc(self) -> datetime | None:
        if self.send_at is None:
            return None
        at = self.send_at if self.send_at.tzinfo else self.send_at.replace(tzinfo=_zone(self.timezone))
        return at.astimezone(UTC)

    def next_allowed(self, now: datetime) -> datetime:
        """``now`` if sending is allowed then, else the end of the quiet hours (UTC)."""
        if self.quiet_hours is None:
            return now
        zone = _zone(self.timezone)
        local = now.astimezone(zone)
        if not self.quiet_hours.contains(local.time().replace(tzinfo=None)):
            return now
        end = datetime.combine(local.date(), self.quiet_hours.end, tzinfo=zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_hours.end, tzinfo=zone)
        return end.astimezone(UTC)
