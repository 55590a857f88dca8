"""Multi-row statements: a batch's rows bound as one array per column, each statement built once.

``rows_insert`` writes ``INSERT … SELECT FROM unnest(…) WITH ORDINALITY … ORDER BY n`` (the rows go in in
the batch's order); ``columns`` turns rows into the arrays it binds. An upsert may touch a row only once per
statement, so the caller first reduces its rows to one per conflict key (``reduce``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
from sqlalchemy import TextClause, text

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

# Types bound as text arrays and cast per element (no driver codec needed for them).
_AS_TEXT = frozenset({"uuid", "jsonb"})


def rows_insert(table: str, columns: Sequence[tuple[str, str]], tail: str) -> TextClause:
    """``INSERT INTO table (…) SELECT … FROM unnest(:column arrays)`` followed by ``tail`` (its ON CONFLICT and
    RETURNING). ``columns``: (name, SQL type) each; the parameters are named after the columns."""
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"CAST(:{name} AS {'text' if kind in _AS_TEXT else kind}[])" for name, kind in columns)
    values = ", ".join(f"CAST(r.{name} AS {kind})" if kind in _AS_TEXT else f"r.{name}" for name, kind in columns)
    statement = (f"INSERT INTO {table} ({names}) SELECT {values} FROM unnest({arrays}) "  # noqa: S608 - constants
                 f"WITH ORDINALITY AS r({names}, n) ORDER BY r.n {tail}")
    return text(statement)


def columns(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """The rows' values as one list per column, keyed by the columns' names."""
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def json_text(value: Any) -> str | None:
    """A JSONB value as the text bound for it (None stays SQL NULL; what orjson refuses, an integer beyond
    64 bits, goes through the standard library)."""
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def reduce(items: Iterable[T], key: Callable[[T], K], keep: Callable[[T, T], T]) -> dict[K, T]:
    """One item per key, in the order of each key's first item: ``keep(kept, next)`` decides between two."""
    kept: dict[K, T] = {}
    for item in items:
        k = key(item)
        kept[k] = keep(kept[k], item) if k in kept else item
    return kept
