"""db.bulk: rows bound as column arrays, reduced to one per key."""

from __future__ import annotations

from db.bulk import columns, json_text, reduce, rows_insert


def test_an_insert_binds_one_array_per_column_and_keeps_the_rows_order() -> None:
    sql = str(rows_insert("t", (("a", "text"), ("b", "uuid"), ("c", "jsonb")), "ON CONFLICT DO NOTHING"))
    assert sql == ("INSERT INTO t (a, b, c) SELECT r.a, CAST(r.b AS uuid), CAST(r.c AS jsonb) "
                   "FROM unnest(CAST(:a AS text[]), CAST(:b AS text[]), CAST(:c AS text[])) "
                   "WITH ORDINALITY AS r(a, b, c, n) ORDER BY r.n ON CONFLICT DO NOTHING")


def test_rows_become_columns() -> None:
    assert columns(("a", "b"), [(1, "x"), (2, None)]) == {"a": [1, 2], "b": ["x", None]}
    assert columns(("a",), []) == {"a": []}


def test_json_is_bound_as_text_and_none_stays_null() -> None:
    assert json_text({"k": [1, "é"]}) == '{"k":[1,"é"]}'
    assert json_text(None) is None
    assert json_text({"n": 2**70}) == '{"n": 1180591620717411303424}'


def test_reduce_keeps_one_item_per_key_in_first_seen_order() -> None:
    items = [("a", 3), ("b", 1), ("a", 1), ("c", 5), ("b", 2)]
    least = reduce(items, lambda i: i[0], lambda kept, new: new if new[1] < kept[1] else kept)
    assert list(least.items()) == [("a", ("a", 1)), ("b", ("b", 1)), ("c", ("c", 5))]
    last = reduce(items, lambda i: i[0], lambda kept, new: new)
    assert list(last.values()) == [("a", 1), ("b", 2), ("c", 5)]

