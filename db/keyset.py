"""Keyset pages: a query's rows in a stable (timestamp, unique id) order, from after a given row.

Unlike ``OFFSET``, a keyset page costs one index range scan however deep it is, and rows added or removed
between two pages never make a page skip or repeat a row. The HTTP side (cursors, ``limit``) is
``api.pages``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, tuple_
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.sql.elements import ColumnElement

Position = tuple[datetime, str]


class BadPosition(ValueError):
    """A position that no row of this order can have (e.g. an id that is not a UUID where ids are)."""


def window(query: Select[Any], at: ColumnElement[Any], row_id: ColumnElement[Any], *, after: Position | None,
           limit: int, newest_first: bool = False) -> Select[Any]:
    """At most ``limit`` rows of ``query`` in (``at``, ``row_id``) order, from the one after ``after``."""
    if after is not None:
        when, after_id = after
        if isinstance(row_id.type, UUID):
            try:
                uuid.UUID(after_id)
            except ValueError as exc:
                raise BadPosition(f"{after_id!r} is not a UUID") from exc
        position = tuple_(at, row_id)
        bound = tuple_(bindparam(None, when, type_=at.type), bindparam(None, after_id, type_=row_id.type))
        query = query.where(position < bound if newest_first else position > bound)
    order = (at.desc(), row_id.desc()) if newest_first else (at.asc(), row_id.asc())
    return query.order_by(*order).limit(limit)
