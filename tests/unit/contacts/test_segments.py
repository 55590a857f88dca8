"""Segment filters: what each condition compiles to, that every query is scoped to the tenant, and bad filters."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql

from contacts.segments import SegmentFilter, query


def _sql(f: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    compiled = query("tenant-a", SegmentFilter.model_validate(f)).compile(dialect=postgresql.dialect())
    return " ".join(str(compiled).split()), compiled.params


def test_empty_filter_is_every_contact_of_the_tenant_who_did_not_opt_out() -> None:
    sql, params = _sql({})
    assert "contacts.tenant_id = %(tenant_id_1)s::UUID" in sql and params["tenant_id_1"] == "tenant-a"
    assert "contacts.opted_out IS false" in sql
    assert "ORDER BY contacts.id" in sql


def test_opted_out_contacts_only_when_asked() -> None:
    sql, _ = _sql({"include_opted_out": True})
    assert "opted_out" not in sql.split("WHERE")[1]
    assert "contacts.tenant_id" in sql  # the tenant stays


def test_tags() -> None:
    sql, params = _sql({"tags_all": ["vip", "a", "vip"], "tags_any": ["x", "y"], "tags_none": ["spam"]})
    assert "contacts.tags @> %(tags_1)s::JSONB" in sql and params["tags_1"] == ["a", "vip"]
    assert sql.count("contacts.tags ?| ARRAY[") == 2
    assert "NOT ((contacts.tags ?| ARRAY[" in sql
    assert {params[k] for k in params if k.startswith("param_")} >= {"x", "y", "spam"}


@pytest.mark.parametrize(("condition", "fragment"), [
    ({"op": "eq", "value": "Pune"}, "contacts.attributes @> %(attributes_1)s::JSONB"),
    ({"op": "neq", "value": "Pune"}, "NOT ((contacts.attributes @> %(attributes_1)s::JSONB))"),
    ({"op": "in", "value": ["Pune", "Goa"]}, "(contacts.attributes ->> %(attributes_1)s::TEXT) IN"),
    ({"op": "contains", "value": "un"}, "ILIKE"),
    ({"op": "exists"}, "contacts.attributes ? %(attributes_1)s"),
    ({"op": "not_exists"}, "NOT ((contacts.attributes ? %(attributes_1)s"),
    ({"op": "gt", "value": 30}, "AS NUMERIC) END >"),
    ({"op": "lt", "value": 30.5}, "AS NUMERIC) END <"),
    ({"op": "gt", "value": "2024-01-01"}, "(contacts.attributes ->> %(attributes_1)s::TEXT) >"),
])
def test_attribute_conditions(condition: dict[str, Any], fragment: str) -> None:
    sql, params = _sql({"attributes": [{"key": "city", **condition}]})
    assert fragment in sql
    if condition["op"] in ("eq", "neq"):
        assert params["attributes_1"] == {"city": condition["value"]}
    else:
        assert params["attributes_1"] == "city"


def test_contains_escapes_wildcards() -> None:
    _, params = _sql({"attributes": [{"key": "n", "op": "contains", "value": "50%_off"}]})
    assert "50/%/_off" in params.values()


@pytest.mark.parametrize("bad", [
    {"attributes": [{"key": "a", "op": "exists", "value": "x"}]},
    {"attributes": [{"key": "a", "op": "in", "value": "x"}]},
    {"attributes": [{"key": "a", "op": "in", "value": []}]},
    {"attributes": [{"key": "a", "op": "eq"}]},
    {"attributes": [{"key": "a", "op": "gt", "value": ["1"]}]},
    {"attributes": [{"key": "a", "op": "like", "value": "x"}]},
    {"attributes": [{"key": "", "op": "exists"}]},
    {"tags_all": [""]},
    {"tags_any": ["t"] * 51},
    {"attributes": [{"key": "a", "op": "exists"}] * 21},
    {"unknown": 1},
])
def test_bad_filters_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SegmentFilter.model_validate(bad)
