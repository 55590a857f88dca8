"""The one pagination contract of the tenant API's lists.

In: ``limit`` (1 to ``MAX_LIMIT``, default ``DEFAULT_LIMIT``) and ``cursor``, the ``next_cursor`` of the
previous page. Out: ``{"items": [...], "next_cursor": "…" | null}``; ``null`` means the last page.
Pages are keyset pages over a stable order (a timestamp, then a unique id; or, for a list the tenant orders,
such as automation rules, its rank, then the id), so rows added or removed between two calls never make a page
skip or repeat a row. A cursor is the opaque base64url of the last
row's sort key: it carries no authority (every query stays scoped to the caller's tenant), and one that
this API did not give is a 422.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.sql.elements import ColumnElement

from db.keyset import BadPosition, Position, window

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 600  # a timestamp and a conversation key (at most 200 characters), encoded

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(description="pass it back as `cursor` for the next page; null on the last",
                                    examples=["WyIyMDI2LTEyLTAxVDA5OjE0OjAzKzAwOjAwIiwgIjBiOWY2YzFlIl0="])


@dataclass(frozen=True)
class PageRequest:
    """What the caller asked for: at most ``limit`` rows, after the row whose sort key is ``after``."""

    limit: int = DEFAULT_LIMIT
    after: Position | None = None


def encode(key: Position) -> str:
    """The cursor of the row whose sort key is ``key``."""
    return base64.urlsafe_b64encode(json.dumps([key[0].isoformat(), key[1]]).encode()).decode()


def decode(cursor: str) -> Position:
    """The sort key a cursor stands for; 422 when the cursor is not one this API gave."""
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        when = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise bad_cursor() from exc
    if when.tzinfo is None or not isinstance(row_id, str):
        raise bad_cursor()
    return when, row_id


def bad_cursor() -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'cursor' is not a cursor this API gave")


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
Cursor = Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH,
                                     description="`next_cursor` of the previous page")]


def page_request(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> PageRequest:
    """The ``limit`` and ``cursor`` query parameters."""
    return PageRequest(limit=limit, after=decode(cursor) if cursor is not None else None)


PageDep = Annotated[PageRequest, Depends(page_request)]

Rank = tuple[int, str]  # a place in an order the tenant chose (a rule's position), then the row's UUID


@dataclass(frozen=True)
class RankRequest:
    """A page of a list in a tenant-chosen order: at most ``limit`` rows, after the row ranked ``after``."""

    limit: int = DEFAULT_LIMIT
    after: Rank | None = None


def encode_rank(key: Rank) -> str:
    """The cursor of the row ranked ``key``."""
    return base64.urlsafe_b64encode(json.dumps([key[0], key[1]]).encode()).decode()


def decode_rank(cursor: str) -> Rank:
    """The rank a cursor stands for; 422 when the cursor is not one this API gave."""
    try:
        rank, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise bad_cursor() from exc
    if type(rank) is not int or not isinstance(row_id, str):
        raise bad_cursor()
    try:
        uuid.UUID(row_id)
    except ValueError as exc:
        raise bad_cursor() from exc
    return rank, row_id


def rank_request(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> RankRequest:
    """The ``limit`` and ``cursor`` query parameters of a ranked list."""
    return RankRequest(limit=limit, after=decode_rank(cursor) if cursor is not None else None)


RankPageDep = Annotated[RankRequest, Depends(rank_request)]


def keyset(query: Select[Any], at: ColumnElement[Any], row_id: ColumnElement[Any], page: PageRequest, *,
           newest_first: bool = False) -> Select[Any]:
    """``query`` in (``at``, ``row_id``) order from after the cursor's row, one row more than the page
    (``page_of`` tells from it whether another page follows)."""
    with cursor_checked():
        return window(query, at, row_id, after=page.after, limit=page.limit + 1, newest_first=newest_first)


@contextlib.contextmanager
def cursor_checked() -> Iterator[None]:
    """Answer 422 for a cursor whose position no row of the list can have."""
    try:
        yield
    except BadPosition as exc:
        raise bad_cursor() from exc


def page_of(rows: Sequence[Any], page: PageRequest, key: Callable[[Any], Position]) -> tuple[list[Any], str | None]:
    """The page's rows (``rows`` holds one more when another page follows) and the next page's cursor."""
    shown = list(rows[:page.limit])
    return shown, encode(key(shown[-1])) if len(rows) > page.limit else None
