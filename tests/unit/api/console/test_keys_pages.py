"""The console's API keys come a page at a time: the link to the older ones carries the next cursor."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from api.pages import decode, encode
from tests.unit.api.console.test_templates import NOW, connection, page


def test_more_keys_are_a_link_to_the_next_page() -> None:
    cursor = encode((NOW, "7f1c3f0e-0000-4000-8000-000000000000"))
    shown = page(connection("not_connected"), keys_next=cursor)
    tag, attrs = shown.element("older-keys")
    assert tag == "a" and shown.text("older-keys") == "Older keys"
    url = urlsplit(attrs["href"])
    assert url.path == "/console" and url.fragment == "api-keys"
    assert decode(parse_qs(url.query)["keys"][0]) == (NOW, "7f1c3f0e-0000-4000-8000-000000000000")


def test_the_last_page_has_no_link() -> None:
    assert "older-keys" not in page(connection("not_connected"), keys_next=None).ids
