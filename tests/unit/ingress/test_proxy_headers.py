"""aerostic.web: the proxy headers (``X-Forwarded-For``) are applied on the API's paths, where the client's address
is read (login throttling), and not on Meta's webhook path, which the server serves without the layer."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from aerostic.web import create_app
from config.settings import IngressSettings


class Recorder:
    """An ASGI app that keeps the scope it was called with."""

    def __init__(self) -> None:
        self.scopes: list[MutableMapping[str, Any]] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)


def _scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "client": ("127.0.0.1", 50000), "scheme": "http",
            "headers": [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]}


async def _noop_receive() -> MutableMapping[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _noop_send(message: MutableMapping[str, Any]) -> None:
    return None


async def test_an_api_path_sees_the_forwarded_client_and_the_webhook_path_the_connection() -> None:
    app = create_app(IngressSettings(environment="test"))
    api, webhook = Recorder(), Recorder()
    app._api.app = api  # type: ignore[attr-defined]  # the middleware's inner app
    app.webhook = webhook  # type: ignore[assignment]
    await app(_scope("/v1/conversations"), _noop_receive, _noop_send)
    await app(_scope("/webhooks/meta"), _noop_receive, _noop_send)
    assert api.scopes[0]["client"] == ("203.0.113.9", 0) and api.scopes[0]["scheme"] == "https"
    assert webhook.scopes[0]["client"] == ("127.0.0.1", 50000) and webhook.scopes[0]["scheme"] == "http"


async def test_a_forwarded_header_from_an_untrusted_peer_is_ignored() -> None:
    app = create_app(IngressSettings(environment="test"))
    api = Recorder()
    app._api.app = api  # type: ignore[attr-defined]
    scope = {**_scope("/v1/conversations"), "client": ("198.51.100.7", 40000)}
    await app(scope, _noop_receive, _noop_send)
    assert api.scopes[0]["client"] == ("198.51.100.7", 40000)
