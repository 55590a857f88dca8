"""api.pages and db.keyset: the cursor, the page and the keyset query."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from api.pages import MAX_LIMIT, Page, PageDep, PageRequest, decode, decode_rank, encode, encode_rank, keyset, page_of
from db.keyset import BadPosition, window
from db.tables import conversations, tenants

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def sql(query: object) -> str:
    return str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


def test_a_cursor_gives_back_the_position_it_was_made_of() -> None:
    key = str(uuid.uuid4())
    assert decode(encode((AT, key))) == (AT, key)


@pytest.mark.parametrize("cursor", [
    "not base64 at all!", base64.urlsafe_b64encode(b"[1, 2]").decode(), base64.urlsafe_b64encode(b"{}").decode(),
    base64.urlsafe_b64encode(b'["2026-01-02T03:04:05", "x"]').decode(),  # no time zone
    base64.urlsafe_b64encode(b'["2026-01-02T03:04:05+00:00", 7]').decode(),
])
def test_a_cursor_this_api_did_not_give_is_a_422(cursor: str) -> None:
    with pytest.raises(HTTPException) as refused:
        decode(cursor)
    assert refused.value.status_code == 422 and "cursor" in str(refused.value.detail)


def rows(n: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(at=AT + timedelta(seconds=i), id=f"r{i}") for i in range(n)]


def test_a_rank_cursor_gives_back_the_rank_it_was_made_of() -> None:
    key = str(uuid.uuid4())
    assert decode_rank(encode_rank((7, key))) == (7, key)


@pytest.mark.parametrize("cursor", [
    "not base64 at all!", base64.urlsafe_b64encode(b"[1]").decode(), base64.urlsafe_b64encode(b"{}").decode(),
    base64.urlsafe_b64encode(b'["7", "x"]').decode(), base64.urlsafe_b64encode(b'[true, "x"]').decode(),
    base64.urlsafe_b64encode(b'[1.5, "x"]').decode(), base64.urlsafe_b64encode(b"[7, 8]").decode(),
    encode((AT, str(uuid.uuid4()))),  # a time-ordered list's cursor is no rank
    base64.urlsafe_b64encode(b'[7, "not-a-uuid"]').decode(),
])
def test_a_rank_cursor_this_api_did_not_give_is_a_422(cursor: str) -> None:
    with pytest.raises(HTTPException) as refused:
        decode_rank(cursor)
    assert refused.value.status_code == 422 and "cursor" in str(refused.value.detail)


def test_a_page_with_one_row_more_has_a_next_cursor_at_its_last_row() -> None:
    shown, cursor = page_of(rows(4), PageRequest(limit=3), lambda r: (r.at, r.id))
    assert [r.id for r in shown] == ["r0", "r1", "r2"]
    assert cursor is not None and decode(cursor) == (AT + timedelta(seconds=2), "r2")


@pytest.mark.parametrize("n", [0, 2, 3])
def test_the_last_page_has_no_cursor(n: int) -> None:
    shown, cursor = page_of(rows(n), PageRequest(limit=3), lambda r: (r.at, r.id))
    assert len(shown) == n and cursor is None


def test_keyset_orders_by_time_then_id_from_after_the_cursor_and_asks_one_row_more() -> None:
    first = sql(keyset(select(tenants), tenants.c.created_at, tenants.c.id, PageRequest(limit=10)))
    assert "ORDER BY tenants.created_at ASC, tenants.id ASC" in first and "LIMIT 11" in first
    assert "WHERE" not in first
    key = str(uuid.uuid4())
    after = sql(keyset(select(tenants), tenants.c.created_at, tenants.c.id, PageRequest(limit=10, after=(AT, key))))
    assert "(tenants.created_at, tenants.id) > (" in after and key.replace("-", "") in after
    newest = sql(window(select(conversations), conversations.c.created_at, conversations.c.key, after=(AT, "k"),
                        limit=5, newest_first=True))
    assert "(conversations.created_at, conversations.key) < (" in newest
    assert "ORDER BY conversations.created_at DESC, conversations.key DESC" in newest and "LIMIT 5" in newest


def test_a_position_that_no_uuid_keyed_row_can_have_is_refused() -> None:
    with pytest.raises(BadPosition):
        window(select(tenants), tenants.c.created_at, tenants.c.id, after=(AT, "not-a-uuid"), limit=1)
    with pytest.raises(HTTPException) as refused:
        keyset(select(tenants), tenants.c.created_at, tenants.c.id, PageRequest(after=(AT, "x")))
    assert refused.value.status_code == 422


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()

    @app.get("/things")
    async def things(page: PageDep) -> Page[str]:
        return Page(items=[str(page.limit), repr(page.after)], next_cursor=None)

    return TestClient(app)


def test_limit_and_cursor_are_query_parameters_with_bounds(client: TestClient) -> None:
    assert client.get("/things").json() == {"items": ["50", "None"], "next_cursor": None}
    assert client.get("/things", params={"limit": MAX_LIMIT}).status_code == 200
    for limit in (0, MAX_LIMIT + 1):
        assert client.get("/things", params={"limit": limit}).status_code == 422
    assert client.get("/things", params={"cursor": "x" * 601}).status_code == 422
    assert client.get("/things", params={"cursor": "garbage"}).status_code == 422
    cursor = encode((AT, "k1"))
    assert client.get("/things", params={"cursor": cursor}).json()["items"][1] == repr((AT, "k1"))
