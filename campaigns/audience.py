"""A campaign's audience: a segment of the tenant's contacts, a CSV of numbers, or the recipients of an
earlier campaign in some states (retargeting).

A CSV is read once, when the campaign is created: each row's number is normalised to E.164 (a row whose
number is not valid is kept and skipped as ``invalid_number``; a number already seen in an earlier row is
skipped as ``duplicate``), and the other columns are kept for the template's variables.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from campaigns.states import RecipientState, SkipReason
from contacts.phones import InvalidNumber, normalise, wa_id_of
from contacts.segments import SegmentFilter

MAX_CSV_ROWS = 100_000
MAX_CSV_CHARS = 8 * 1024 * 1024  # the campaign API's body limit (api.limits) is this plus headroom
MAX_CSV_COLUMNS = 50
MAX_CELL_CHARS = 1024

# Named retargeting filters (an explicit list of states may be given instead).
RETARGET_FILTERS: dict[str, tuple[RecipientState, ...]] = {
    "not_read": (RecipientState.SUBMITTED, RecipientState.SENT, RecipientState.DELIVERED),
    "not_delivered": (RecipientState.SUBMITTED, RecipientState.SENT, RecipientState.FAILED),
    "not_replied": (RecipientState.SUBMITTED, RecipientState.SENT, RecipientState.DELIVERED, RecipientState.READ),
    "failed": (RecipientState.FAILED,),
    "read": (RecipientState.READ, RecipientState.REPLIED),
    "replied": (RecipientState.REPLIED,),
}


class SegmentAudience(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["segment"]
    segment_id: str | None = Field(default=None, max_length=64)
    filter: SegmentFilter | None = None


class CsvAudience(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["csv"]
    csv: str = Field(min_length=1, max_length=MAX_CSV_CHARS)
    phone_column: str = Field(default="phone", min_length=1, max_length=100)
    region: str | None = Field(default=None, max_length=2)


class RetargetAudience(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["retarget"]
    campaign_id: str = Field(max_length=64)
    filter: Literal["not_read", "not_delivered", "not_replied", "failed", "read", "replied"] | None = None
    states: list[RecipientState] | None = Field(default=None, max_length=len(RecipientState))

    def wanted(self) -> list[str]:
        states = RETARGET_FILTERS[self.filter] if self.filter else tuple(self.states or ())
        return sorted({s.value for s in states})


Audience = Annotated[SegmentAudience | CsvAudience | RetargetAudience, Field(discriminator="kind")]


@dataclass(frozen=True, slots=True)
class AudienceRow:
    line: int
    raw: str
    wa_id: str | None
    problem: str | None
    columns: dict[str, str] = field(default_factory=dict)


class CsvError(ValueError):
    """The CSV as a whole cannot be used (no header, no phone column, too many rows)."""


def parse_csv(text: str, phone_column: str, region: str | None = None) -> list[AudienceRow]:
    """The rows of a CSV audience, line numbers as in the file (the header is line 1)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if not header:
        raise CsvError("the CSV has no header row")
    names = [h.strip() for h in header]
    if len(names) > MAX_CSV_COLUMNS:
        raise CsvError(f"the CSV has more than {MAX_CSV_COLUMNS} columns")
    wanted = phone_column.strip().lower()
    matches = [i for i, name in enumerate(names) if name.lower() == wanted]
    if not matches:
        raise CsvError(f"the CSV has no column {phone_column!r} (columns: {', '.join(names)[:300]})")
    phone_at = matches[0]
    rows: list[AudienceRow] = []
    seen: set[str] = set()
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_CSV_ROWS:
            raise CsvError(f"the CSV has more than {MAX_CSV_ROWS} rows")
        raw = cells[phone_at].strip() if phone_at < len(cells) else ""
        columns = {name: cells[i].strip()[:MAX_CELL_CHARS] for i, name in enumerate(names)
                   if i < len(cells) and i != phone_at and name}
        try:
            wa_id: str | None = wa_id_of(normalise(raw, region))
        except InvalidNumber:
            rows.append(AudienceRow(line, raw[:100], None, SkipReason.INVALID_NUMBER.value, columns))
            continue
        assert wa_id is not None
        problem = SkipReason.DUPLICATE.value if wa_id in seen else None
        seen.add(wa_id)
        rows.append(AudienceRow(line, raw[:100], wa_id, problem, columns))
    return rows


def contact_key(row: AudienceRow) -> str:
    """The recipient's key in its campaign: the wa_id, or ``line:<n>`` for a row skipped before sending."""
    return f"line:{row.line}" if row.problem or row.wa_id is None else row.wa_id
