"""Segments: which of a tenant's contacts an audience holds, as a filter compiled to one SQL query.

A ``SegmentFilter`` holds conditions that must all be true: tags (``tags_all``: every one, ``tags_any``: at least
one, ``tags_none``: none of them), attribute conditions (``eq``, ``neq``, ``in``, ``contains``, ``exists``,
``not_exists``, ``gt``, ``lt``), and whether opted-out contacts are left out (they are unless
``include_opted_out``). ``where(tenant_id, f)`` is the SQL condition, always scoped to the tenant;
``count`` is the live count; ``batches`` yields the matching contacts for a campaign's expansion.

Attributes are strings (what the API, imports and automation rules store). ``eq``/``neq``/``in`` compare
exactly; ``contains`` is a case-insensitive substring; ``gt``/``lt`` compare numerically when the value is a
number (attributes that are not numbers never match), else as text (so ISO dates compare as dates);
``neq`` and ``not_exists`` match a contact without the attribute.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Numeric, Row, Select, Text, and_, case, cast, false, func, not_, select, true
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from db.tables import contacts, segments

MAX_TAGS = 50
MAX_CONDITIONS = 20
MAX_VALUES = 100
MAX_BATCH = 5000
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AttributeKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Value = Annotated[str, StringConstraints(max_length=1000)]
Op = Literal["eq", "neq", "in", "contains", "exists", "not_exists", "gt", "lt"]
_NUMBER = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"

# What a batch holds of each contact (``batches``).
COLUMNS = (contacts.c.id, contacts.c.wa_id, contacts.c.e164, contacts.c.profile_name, contacts.c.tags,
           contacts.c.attributes, contacts.c.opted_out)


class AttributeCondition(BaseModel):
    """One condition on an attribute: ``{"key": "city", "op": "eq", "value": "Pune"}``."""

    model_config = ConfigDict(extra="forbid")

    key: AttributeKey
    op: Op
    value: Value | float | Annotated[list[Value], Field(max_length=MAX_VALUES)] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> AttributeCondition:
        if self.op in ("exists", "not_exists"):
            if self.value is not None:
                raise ValueError(f"'{self.op}' takes no value")
        elif self.op == "in":
            if not isinstance(self.value, list) or not 1 <= len(self.value) <= MAX_VALUES:
                raise ValueError(f"'in' takes a list of 1 to {MAX_VALUES} strings")
        elif self.op in ("gt", "lt"):
            if not isinstance(self.value, float | int | str):
                raise ValueError(f"'{self.op}' takes a number or a string")
        elif not isinstance(self.value, str):
            raise ValueError(f"'{self.op}' takes a string")
        return self


class SegmentFilter(BaseModel):
    """Conditions that all hold for every contact of the segment (an empty filter: every contact)."""

    model_config = ConfigDict(extra="forbid")

    tags_all: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    tags_any: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    tags_none: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    attributes: list[AttributeCondition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    include_opted_out: bool = False


def where(tenant_id: str, segment: SegmentFilter) -> ColumnElement[bool]:
    """The SQL condition of ``segment`` over ``contacts``, scoped to ``tenant_id``."""
    c = contacts.c
    clauses: list[ColumnElement[bool]] = [c.tenant_id == tenant_id]
    if not segment.include_opted_out:
        clauses.append(c.opted_out.is_(false()))
    if segment.tags_all:
        clauses.append(c.tags.contains(sorted(set(segment.tags_all))))
    if segment.tags_any:
        clauses.append(c.tags.has_any(_texts(segment.tags_any)))
    if segment.tags_none:
        clauses.append(not_(c.tags.has_any(_texts(segment.tags_none))))
    clauses.extend(_attribute(condition) for condition in segment.attributes)
    return and_(true(), *clauses)


def _texts(values: list[str]) -> Any:
    return array(sorted(set(values)), type_=Text)


def _attribute(condition: AttributeCondition) -> ColumnElement[bool]:
    attrs, key, value = contacts.c.attributes, condition.key, condition.value
    text_value = attrs[key].astext
    if condition.op == "eq":
        return attrs.contains({key: value})
    if condition.op == "neq":
        return not_(attrs.contains({key: value}))
    if condition.op == "in":
        assert isinstance(value, list)
        return text_value.in_(value)
    if condition.op == "contains":
        return text_value.icontains(str(value), autoescape=True)
    if condition.op == "exists":
        return attrs.has_key(key)
    if condition.op == "not_exists":
        return not_(attrs.has_key(key))
    if isinstance(value, float | int):  # gt / lt on numbers: attributes that are no number never match
        number = case((text_value.regexp_match(_NUMBER), cast(text_value, Numeric)), else_=None)
        bound = Decimal(str(value))
        return number > bound if condition.op == "gt" else number < bound
    return text_value > str(value) if condition.op == "gt" else text_value < str(value)


def query(tenant_id: str, segment: SegmentFilter) -> Select[Any]:
    """``SELECT`` the segment's contacts (``COLUMNS``), in id order."""
    return select(*COLUMNS).where(where(tenant_id, segment)).order_by(contacts.c.id)


async def count(conn: AsyncConnection, tenant_id: str, segment: SegmentFilter) -> int:
    """How many contacts the segment holds now."""
    total = await conn.scalar(select(func.count()).select_from(contacts).where(where(tenant_id, segment)))
    return int(total or 0)


async def load(conn: AsyncConnection, tenant_id: str, segment_id: str) -> SegmentFilter | None:
    """The filter of the tenant's saved segment ``segment_id``, or None when the tenant has no such segment."""
    try:
        uuid.UUID(segment_id)
    except ValueError:
        return None
    stored = await conn.scalar(select(segments.c.filter).where(
        segments.c.tenant_id == tenant_id, segments.c.id == segment_id))
    return None if stored is None else SegmentFilter.model_validate(stored)


async def batches(engine: AsyncEngine, tenant_id: str, segment: SegmentFilter, *, batch_size: int = 1000,
                  after_id: int = 0) -> AsyncIterator[Sequence[Row[Any]]]:
    """The segment's contacts in batches of at most ``batch_size``, in ascending ``id`` order (keyset pages).

    For expanding a campaign's audience. Each batch is one short query of its own (no transaction held
    between batches, so a 100,000-contact audience does not pin a snapshot), each row has ``COLUMNS``
    (``id``, ``wa_id``, ``e164``, ``profile_name``, ``tags``, ``attributes``, ``opted_out``). To resume after
    a crash, pass the last ``id`` handled as ``after_id``: the batches continue after it. A contact that
    starts or stops matching while the batches run is included or not by the batch that reaches its id;
    opted-out contacts are left out unless the filter includes them, so check ``opted_out`` again at send
    time if the filter includes them.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1 to {MAX_BATCH}")
    base = query(tenant_id, segment)
    last = after_id
    while True:
        async with engine.connect() as conn:
            rows = (await conn.execute(base.where(contacts.c.id > last).limit(batch_size))).all()
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1].id

