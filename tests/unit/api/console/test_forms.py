"""api.console.forms: urlencoded bodies read with a cap, and the same-origin check of console posts."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from starlette.requests import Request
from starlette.types import Message

from api.console.forms import MAX_FIELDS, FormError, parse_form, read_form, same_origin

FORM = "application/x-www-form-urlencoded"


def request(headers: dict[str, str], chunks: Iterable[bytes] = (b"",), *, method: str = "POST") -> Request:
    pending = list(chunks)

    async def receive() -> Message:
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    scope = {"type": "http", "method": method, "path": "/console/login", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    return Request(scope, receive)


def test_parse_form_decodes_percent_escapes_and_plus() -> None:
    form = parse_form(b"email=ana%40example.com&password=p%C3%A4ss+w%26rd%3D&empty=")
    assert form == {"email": "ana@example.com", "password": "päss w&rd=", "empty": ""}


def test_the_first_of_repeated_fields_wins() -> None:
    assert parse_form(b"name=first&name=second") == {"name": "first"}


@pytest.mark.parametrize("body", [
    "password=caf\u00e9".encode(),  # raw non-ASCII bytes are not urlencoded
    b"password=%FF%FE",  # percent-escapes that are not UTF-8
    "&".join(f"f{i}=x" for i in range(MAX_FIELDS + 1)).encode(),
])
def test_unreadable_forms_are_refused(body: bytes) -> None:
    with pytest.raises(FormError) as refused:
        parse_form(body)
    assert refused.value.status_code == 400


async def test_read_form_joins_the_chunks() -> None:
    form = await read_form(request({"content-type": f"{FORM}; charset=UTF-8"}, [b"email=a%40b.c&pass", b"word=x"]))
    assert form == {"email": "a@b.c", "password": "x"}


async def test_read_form_wants_an_urlencoded_body() -> None:
    with pytest.raises(FormError) as refused:
        await read_form(request({"content-type": "application/json"}, [b"{}"]))
    assert refused.value.status_code == 415


async def test_read_form_refuses_a_declared_large_body_before_reading_it() -> None:
    with pytest.raises(FormError) as refused:
        await read_form(request({"content-type": FORM, "content-length": "100000"}, []), max_bytes=1000)
    assert refused.value.status_code == 413


async def test_read_form_stops_reading_a_large_body_without_a_length() -> None:
    chunks = [b"a=" + b"x" * 600, b"y" * 600, b"z" * 600]
    with pytest.raises(FormError) as refused:
        await read_form(request({"content-type": FORM}, chunks), max_bytes=1000)
    assert refused.value.status_code == 413


@pytest.mark.parametrize(("headers", "allowed"), [
    ({"host": "console.example.com"}, True),  # a non-browser client: no Origin, no cookie of a victim
    ({"host": "console.example.com", "origin": "https://console.example.com", "sec-fetch-site": "same-origin"}, True),
    ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, True),
    ({"host": "internal:8000", "origin": "https://console.example.com"}, True),  # behind a proxy: the public URL
    ({"host": "console.example.com", "origin": "https://evil.example"}, False),
    ({"host": "console.example.com", "origin": "null"}, False),
    ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:9000"}, False),  # another port is another origin
    ({"host": "console.example.com", "sec-fetch-site": "cross-site"}, False),
    ({"host": "console.example.com", "sec-fetch-site": "same-site"}, False),
])
def test_same_origin(headers: dict[str, str], allowed: bool) -> None:
    assert same_origin(request(headers), public_url="https://console.example.com") is allowed
