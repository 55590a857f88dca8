"""Contacts, CSV imports, segments and opt-outs through the real stack: the API, PostgreSQL, and Meta's
``user_preferences`` webhook through the ingress, the router and the projector."""

from __future__ import annotations

import copy
import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from contacts import segments
from contacts.segments import SegmentFilter
from tests.integration.helpers import Business, BusinessFactory, Poster, customer_writes, scalar, wait_for

ASYNC = pytest.mark.asyncio(loop_scope="session")
VECTOR = Path(__file__).resolve().parents[1] / "data" / "meta" / "webhooks" / \
    "pywa-user-marketing-preferences-resume.json"


async def contact(api: httpx.AsyncClient, business: Business, contact_id: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/contacts/{contact_id}", headers=business.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def create(api: httpx.AsyncClient, business: Business, phone: str, **extra: Any) -> dict[str, Any]:
    answer = await api.post("/v1/contacts", headers=business.auth, json={"phone": phone, **extra})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@ASYNC
async def test_contacts_are_created_found_changed_opted_out_and_deleted(
        api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    shop = await business_factory("contacts crud")
    ann = await create(api, shop, "+91 98765-43210", name="Ann", tags=["vip", "vip"], attributes={"city": "Pune"})
    assert (ann["phone"], ann["wa_id"], ann["tags"], ann["opted_out"]) == ("+919876543210", "919876543210",
                                                                           ["vip"], False)
    again = await api.post("/v1/contacts", headers=shop.auth, json={"phone": "09876543210", "region": "IN"})
    assert again.status_code == 409 and again.json()["detail"]["id"] == ann["id"]  # the same number, otherwise
    bad = await api.post("/v1/contacts", headers=shop.auth, json={"phone": "12345"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "phone"], bad.text
    assert "too short" in bad.json()["detail"][0]["msg"]
    assert (await api.post("/v1/contacts", headers=shop.auth, json={"phone": "1", "region": "XX"})).status_code == 422
    bob = await create(api, shop, "+1 650 555 0100", name="Bob")

    changed = await api.patch(f"/v1/contacts/{ann['id']}", headers=shop.auth, json={
        "add_tags": ["lead", "vip"], "remove_tags": ["nope"], "attributes": {"plan": "gold"}, "name": "Ann B."})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["tags"], changed.json()["attributes"], changed.json()["name"]) == (
        ["vip", "lead"], {"city": "Pune", "plan": "gold"}, "Ann B.")
    removed = await api.patch(f"/v1/contacts/{ann['id']}", headers=shop.auth,
                              json={"remove_tags": ["vip"], "remove_attributes": ["city"]})
    assert (removed.json()["tags"], removed.json()["attributes"]) == (["lead"], {"plan": "gold"})

    async def found(**params: Any) -> list[str]:
        answer = await api.get("/v1/contacts", headers=shop.auth, params=params)
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["items"]]

    assert await found() == [bob["id"], ann["id"]]  # newest first
    assert await found(q="ann") == [ann["id"]]
    assert await found(q="98765") == [ann["id"]]
    assert await found(q="lead") == [ann["id"]]
    assert await found(tag="lead") == [ann["id"]]
    first = (await api.get("/v1/contacts", headers=shop.auth, params={"limit": 1})).json()
    second = (await api.get("/v1/contacts", headers=shop.auth, params={"limit": 1, "cursor": first["next_cursor"]}))
    assert [c["id"] for c in first["items"] + second.json()["items"]] == [bob["id"], ann["id"]]

    out = await api.post(f"/v1/contacts/{ann['id']}/opt-out", headers=shop.auth, json={"reason": "asked by phone"})
    assert out.status_code == 200, out.text
    assert (out.json()["opted_out"], out.json()["opt_source"], out.json()["opt_actor"]) == (
        True, "admin", f"api_key:{await _key_id(api, shop)}")
    assert out.json()["opted_out_at"] is not None
    assert await found(opted_out="true") == [ann["id"]]
    back = await api.post(f"/v1/contacts/{ann['id']}/opt-in", headers=shop.auth, json={})
    assert (back.json()["opted_out"], back.json()["opted_out_at"]) == (False, None)
    history = (await api.get(f"/v1/contacts/{ann['id']}/opt-history", headers=shop.auth)).json()
    assert [(h["opted_out"], h["source"], h["detail"]) for h in history] == [
        (False, "admin", None), (True, "admin", "asked by phone")]

    # Deleting a contact forgets it, not its opt-out: created again, it is still opted out.
    await api.post(f"/v1/contacts/{bob['id']}/opt-out", headers=shop.auth, json={})
    assert (await api.delete(f"/v1/contacts/{bob['id']}", headers=shop.auth)).status_code == 204
    assert (await api.get(f"/v1/contacts/{bob['id']}", headers=shop.auth)).status_code == 404
    assert (await api.delete(f"/v1/contacts/{bob['id']}", headers=shop.auth)).status_code == 404
    reborn = await create(api, shop, "16505550100")
    assert reborn["id"] != bob["id"] and reborn["opted_out"] and reborn["opt_source"] == "admin"


async def _key_id(api: httpx.AsyncClient, business: Business) -> str:
    return str((await api.get("/v1/api-keys", headers=business.auth)).json()["items"][0]["id"])


def _csv(rows: int, *, seed: int) -> tuple[bytes, dict[str, Any]]:
    """A CSV of ``rows`` data rows (UTF-8 with BOM, CRLF), with invalid and duplicate rows, and what it gives."""
    rng = random.Random(seed)
    lines = ["Phone,Name,City,Plan,Tags"]
    invalid_lines: list[int] = []
    unique: list[int] = []
    duplicates = 0
    for i in range(rows):
        if i % 25 == 7:  # invalid: too short, or no number
            lines.append(f"{'12345' if i % 2 else ''},Bad {i},Nowhere,none,")
            invalid_lines.append(i + 2)
        elif i % 40 == 11 and unique:  # a number seen before (in this batch or an earlier one), written otherwise
            n = rng.choice(unique)
            lines.append(f"+1 (650) {n // 10000}-{n % 10000:04d},,Goa,,repeat")
            duplicates += 1
        else:
            n = 7000000 + i
            lines.append(f"1650{n},Zoë {i},{rng.choice(['Pune', 'Delhi'])},{'gold' if i % 3 == 0 else 'basic'},"
                         f"imported;batch{i % 2}")
            unique.append(n)
    data = b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode()
    return data, {"invalid_lines": invalid_lines, "unique": len(unique), "duplicates": duplicates}


@ASYNC
async def test_a_csv_import_streams_with_progress_and_reports_what_it_did(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    shop = await business_factory("contacts import")
    existing = await create(api, shop, "+1 650 700 0000", name="Kept", attributes={"vip": "yes"}, tags=["old"])
    data, expected = _csv(3000, seed=11)
    started = await api.post("/v1/contacts/imports", headers={**shop.auth, "content-type": "text/csv"},
                             params={"tag": "spring", "filename": "contacts.csv"}, content=data)
    assert started.status_code == 202, started.text
    body = started.json()
    assert (body["status"], body["encoding"], body["size_bytes"], body["filename"]) == (
        "running", "utf-8-sig", len(data), "contacts.csv")
    seen: list[tuple[int, float]] = []

    async def finished() -> dict[str, Any] | None:
        view = (await api.get(f"/v1/contacts/imports/{body['id']}", headers=shop.auth)).json()
        seen.append((view["rows"], view["progress"]))
        return view if view["status"] != "running" else None

    report = await wait_for(finished, timeout=120, what="the import to finish")
    assert seen == sorted(seen), "progress never goes back"
    invalid = len(expected["invalid_lines"])
    assert report["status"] == "completed", report
    assert (report["rows"], report["invalid"], report["duplicates"], report["progress"]) == (
        3000, invalid, expected["duplicates"], 1.0)
    unique = expected["unique"]
    assert (report["created"], report["updated"]) == (unique - 1, 1)  # +16507000000 existed
    assert len(report["errors"]) == min(invalid, 100)
    assert [e["line"] for e in report["errors"]] == expected["invalid_lines"][:100]
    assert {e["reason"] for e in report["errors"]} == {"too short", "no phone number"}
    assert await scalar(db, "SELECT count(*) FROM contacts WHERE tenant_id = :t", t=shop.tenant_id) == unique

    kept = await contact(api, shop, existing["id"])
    assert kept["name"] == "Zoë 0" and kept["tags"][:2] == ["old", "spring"]
    assert kept["attributes"]["vip"] == "yes" and kept["attributes"]["plan"] == "gold"
    repeated = (await api.get("/v1/contacts", headers=shop.auth, params={"tag": "repeat"})).json()["items"]
    assert repeated and all(c["attributes"]["city"] == "Goa" and "imported" in c["tags"] for c in repeated)

    # The same file again: everything is updated, nothing doubled.
    again = await api.post("/v1/contacts/imports", headers={**shop.auth, "content-type": "text/csv"}, content=data)
    assert again.status_code == 202, again.text
    second = await wait_for(lambda: _done(api, shop, again.json()["id"]), timeout=120, what="the second import")
    assert (second["created"], second["updated"]) == (0, unique)
    assert await scalar(db, "SELECT count(*) FROM contacts WHERE tenant_id = :t", t=shop.tenant_id) == unique
    listed = (await api.get("/v1/contacts/imports", headers=shop.auth)).json()["items"]
    assert [i["id"] for i in listed] == [again.json()["id"], body["id"]]


async def _done(api: httpx.AsyncClient, business: Business, import_id: str) -> dict[str, Any] | None:
    view = (await api.get(f"/v1/contacts/imports/{import_id}", headers=business.auth)).json()
    return dict(view) if view["status"] != "running" else None


@ASYNC
async def test_imports_refuse_what_they_cannot_read(api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    shop = await business_factory("contacts import refusals")
    csv = {**shop.auth, "content-type": "text/csv"}
    for params, data, field in (
        ({}, b"Name,City\nAnn,Pune\n", "phone_column"),
        ({"phone_column": "Mobile"}, b"Phone\n16505551234\n", "phone_column"),
        ({"attribute": "Town"}, b"Phone,City\n16505551234,Pune\n", "attribute"),
        ({"region": "XX"}, b"Phone\n16505551234\n", "region"),
        ({}, b"", "file"),
    ):
        answer = await api.post("/v1/contacts/imports", headers=csv, params=params, content=data)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["detail"][0]["loc"][-1] == field, answer.text
    cp1252 = "Phone,Name\n16505551299,Renée “Ré” Dupré\n".encode("cp1252")
    started = await api.post("/v1/contacts/imports", headers=csv, content=cp1252)
    assert started.status_code == 202 and started.json()["encoding"] == "cp1252"
    done = await wait_for(lambda: _done(api, shop, started.json()["id"]), timeout=60, what="the cp1252 import")
    assert done["created"] == 1
    [renee] = (await api.get("/v1/contacts", headers=shop.auth)).json()["items"]
    assert renee["name"] == "Renée “Ré” Dupré"


@ASYNC
async def test_segment_counts_equal_the_contacts_that_match(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    shop = await business_factory("segments")
    rng = random.Random(5)
    people: list[dict[str, Any]] = []
    for i in range(60):
        tags = sorted(rng.sample(["vip", "lead", "spam", "b2b"], rng.randint(0, 3)))
        attributes = {"city": rng.choice(["Pune", "Goa", "Delhi"]), "age": str(rng.randint(18, 70))}
        if i % 4:
            attributes["plan"] = rng.choice(["gold", "basic"])
        made = await create(api, shop, f"+1 650 555 {1000 + i}", tags=tags, attributes=attributes)
        if i % 9 == 0:
            made = (await api.post(f"/v1/contacts/{made['id']}/opt-out", headers=shop.auth, json={})).json()
        people.append(made)

    def matching(f: dict[str, Any]) -> set[str]:
        spec = SegmentFilter.model_validate(f)
        ids = set()
        for p in people:
            tags, attrs = set(p["tags"]), p["attributes"]
            ok = (spec.include_opted_out or not p["opted_out"]) and set(spec.tags_all) <= tags and (
                not spec.tags_any or tags & set(spec.tags_any)) and not tags & set(spec.tags_none)
            for c in spec.attributes:
                ok = ok and _holds(c.op, attrs.get(c.key), c.value)
            if ok:
                ids.add(p["id"])
        return ids

    filters = [
        {},
        {"include_opted_out": True},
        {"tags_all": ["vip"]},
        {"tags_any": ["lead", "b2b"], "tags_none": ["spam"]},
        {"attributes": [{"key": "city", "op": "eq", "value": "Pune"}, {"key": "age", "op": "gt", "value": 40}]},
        {"attributes": [{"key": "plan", "op": "not_exists"}]},
        {"attributes": [{"key": "plan", "op": "neq", "value": "gold"}, {"key": "age", "op": "lt", "value": 30}]},
        {"attributes": [{"key": "city", "op": "in", "value": ["Goa", "Delhi"]}], "tags_all": ["lead"]},
        {"attributes": [{"key": "city", "op": "contains", "value": "EL"}]},
    ]
    for f in filters:
        expected = matching(f)
        adhoc = await api.post("/v1/segments/count", headers=shop.auth, json=f)
        assert adhoc.status_code == 200 and adhoc.json()["count"] == len(expected), (f, adhoc.text)
        saved = await api.post("/v1/segments", headers=shop.auth, json={"name": json.dumps(f)[:200], "filter": f})
        assert saved.status_code == 201, saved.text
        count = await api.get(f"/v1/segments/{saved.json()['id']}/count", headers=shop.auth)
        assert count.json()["count"] == len(expected), f
        # What a campaign's expansion reads: the same contacts, each once, in batches.
        async with db.connect() as conn:
            spec = await segments.load(conn, shop.tenant_id, saved.json()["id"])
        assert spec is not None
        batched = [str(r.id) async for batch in segments.batches(db, shop.tenant_id, spec, batch_size=7)
                   for r in batch]
        assert len(batched) == len(set(batched)) and set(batched) == expected, f
    assert len(matching({"tags_any": ["lead", "b2b"], "tags_none": ["spam"]})) > 0

    one = (await api.get("/v1/segments", headers=shop.auth, params={"limit": 2})).json()
    assert len(one["items"]) == 2 and one["next_cursor"]
    seg_id = one["items"][0]["id"]
    renamed = await api.put(f"/v1/segments/{seg_id}", headers=shop.auth,
                            json={"name": "VIPs", "filter": {"tags_all": ["vip"]}})
    assert renamed.status_code == 200 and renamed.json()["name"] == "VIPs"
    taken = await api.post("/v1/segments", headers=shop.auth, json={"name": "VIPs", "filter": {}})
    assert taken.status_code == 409
    bad = await api.post("/v1/segments/count", headers=shop.auth,
                         json={"attributes": [{"key": "city", "op": "in", "value": "Pune"}]})
    assert bad.status_code == 422 and "attributes" in bad.text
    assert (await api.delete(f"/v1/segments/{seg_id}", headers=shop.auth)).status_code == 204
    assert (await api.get(f"/v1/segments/{seg_id}/count", headers=shop.auth)).status_code == 404


def _holds(op: str, value: str | None, wanted: Any) -> bool:
    """What an attribute condition means, said in Python."""
    if op in ("eq", "neq"):
        return (value == wanted) == (op == "eq")
    if op in ("exists", "not_exists"):
        return (value is not None) == (op == "exists")
    if value is None:
        return False
    if op == "in":
        return value in wanted
    if op == "contains":
        return str(wanted).casefold() in value.casefold()
    return float(value) > wanted if op == "gt" else float(value) < wanted


def _preferences(business: Business, wa_id: str, value: str, timestamp: int) -> dict[str, Any]:
    """Meta's ``user_preferences`` webhook (the recorded vector) for this tenant's number and customer."""
    body: dict[str, Any] = copy.deepcopy(json.loads(VECTOR.read_text()))
    entry = body["entry"][0]
    entry["id"] = business.waba_id
    change = entry["changes"][0]["value"]
    change["metadata"]["phone_number_id"] = business.phone_number_id
    change["user_preferences"][0].update(wa_id=wa_id, value=value, timestamp=timestamp,
                                         detail=f"User requested to {value} marketing messages")
    return body


@ASYNC
async def test_meta_user_preferences_stop_and_resume_opt_the_contact_out_and_in(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, post: Poster,
        business_factory: BusinessFactory, pipeline_ready: None) -> None:
    shop = await business_factory("user preferences")
    customer = "16505550321"
    made = await create(api, shop, customer, tags=["imported"], attributes={"plan": "gold"})

    async def state() -> tuple[bool, str | None]:
        c = await contact(api, shop, made["id"])
        return c["opted_out"], c["opt_source"]

    now = int(time.time())
    assert (await post(_preferences(shop, customer, "stop", now - 3600))).status_code == 200
    await wait_for(lambda: _is(state, (True, "meta")), what="Meta's stop to opt the contact out")
    opted = await contact(api, shop, made["id"])
    assert datetime.fromisoformat(opted["opted_out_at"]) == datetime.fromtimestamp(now - 3600, UTC)  # Meta's time
    assert (await post(_preferences(shop, customer, "resume", now - 3000))).status_code == 200
    await wait_for(lambda: _is(state, (False, "meta")), what="Meta's resume to opt the contact in")
    # A late stop (older than the resume) changes nothing; a signup is no opt-out.
    assert (await post(_preferences(shop, customer, "stop", now - 3300))).status_code == 200
    assert (await post(_preferences(shop, customer, "signup", now - 2000))).status_code == 200
    await wait_for(lambda: scalar(db, "SELECT count(*) = 4 FROM account_events WHERE tenant_id = :t "
                                      "AND field = 'user_preferences'", t=shop.tenant_id),
                   what="the four webhooks to be projected")
    assert await state() == (False, "meta")
    history = (await api.get(f"/v1/contacts/{made['id']}/opt-history", headers=shop.auth)).json()
    assert [(h["opted_out"], h["source"]) for h in history] == [(False, "meta"), (True, "meta"), (True, "meta")]

    # The customer's own STOP still works, and keeps the tags and attributes the API gave the contact.
    await customer_writes(sim, db, shop, customer, text="STOP")
    await wait_for(lambda: _is(state, (True, "keyword")), what="STOP to opt the contact out")
    after = await contact(api, shop, made["id"])
    assert (after["tags"], after["attributes"]) == (["imported"], {"plan": "gold"})


async def _is(probe: Any, expected: Any) -> bool:
    return bool(await probe() == expected)


@ASYNC
async def test_another_tenant_cannot_see_change_count_or_import_into_a_tenants_contacts(
        api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    a, b = await business_factory("contacts A"), await business_factory("contacts B")
    mine = await create(api, b, "+44 7911 123456", name="B's customer", tags=["b-only"], attributes={"x": "1"})
    segment = (await api.post("/v1/segments", headers=b.auth, json={"name": "B's", "filter": {}})).json()
    started = await api.post("/v1/contacts/imports", headers={**b.auth, "content-type": "text/csv"},
                             content=b"phone,name\n447911123457,B two\n")
    await wait_for(lambda: _done(api, b, started.json()["id"]), what="B's import")
    for method, path, body in (
        ("GET", f"/v1/contacts/{mine['id']}", None),
        ("PATCH", f"/v1/contacts/{mine['id']}", {"add_tags": ["A was here"]}),
        ("POST", f"/v1/contacts/{mine['id']}/opt-out", {}),
        ("GET", f"/v1/contacts/{mine['id']}/opt-history", None),
        ("DELETE", f"/v1/contacts/{mine['id']}", None),
        ("GET", f"/v1/segments/{segment['id']}", None),
        ("GET", f"/v1/segments/{segment['id']}/count", None),
        ("PUT", f"/v1/segments/{segment['id']}", {"name": "A's", "filter": {}}),
        ("GET", f"/v1/contacts/imports/{started.json()['id']}", None),
    ):
        answer = await api.request(method, path, headers=a.auth, json=body)
        assert answer.status_code == 404, (method, path, answer.status_code)
    listed = (await api.get("/v1/contacts", headers=a.auth, params={"q": "7911"})).text
    assert "B's customer" not in listed and "447911" not in listed
    assert (await api.post("/v1/segments/count", headers=a.auth, json={"tags_all": ["b-only"]})).json()["count"] == 0
    assert "B two" not in (await api.get("/v1/contacts/imports", headers=a.auth)).text
    # A importing B's numbers makes A's own contacts; B's stay as they were.
    imported = await api.post("/v1/contacts/imports", headers={**a.auth, "content-type": "text/csv"},
                              content=b"phone,name,x\n447911123456,A's name,2\n")
    done = await wait_for(lambda: _done(api, a, imported.json()["id"]), what="A's import")
    assert (done["created"], done["updated"]) == (1, 0)
    theirs = await contact(api, b, mine["id"])
    assert (theirs["name"], theirs["attributes"], theirs["tags"]) == ("B's customer", {"x": "1"}, ["b-only"])
    assert await scalar(db, "SELECT count(*) FROM contacts WHERE wa_id = '447911123456'") == 2
