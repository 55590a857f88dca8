"""The SSRF policy: what a tenant's URL may be and resolve to, when saved and at every delivery."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from webhooks.urls import Policy, UrlRefused, check_url, resolve

PRODUCTION = Policy(production=True)
TESTS = Policy(production=False, allow_loopback=True)


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://127.9.9.9/hook", "https://localhost/hook", "https://[::1]/hook",
    "https://169.254.169.254/latest/meta-data", "https://10.0.0.5/hook", "https://172.16.3.4/", "https://192.168.1.1/",
    "https://100.64.0.1/", "https://0.0.0.0/", "https://224.0.0.1/", "https://240.0.0.1/", "https://[fe80::1]/",
    "https://[fc00::1]/", "https://[::ffff:169.254.169.254]/", "https://[::ffff:127.0.0.1]/",
    "http://example.com/hook", "ftp://example.com/", "https://user:pw@example.com/", "https:///nohost",
    "https://example.com:99999/",
])
def test_production_refuses(url: str) -> None:
    with pytest.raises(UrlRefused):
        check_url(url, PRODUCTION)


def test_production_accepts_a_public_https_url() -> None:
    assert check_url("https://hooks.example.com:8443/a?b=c", PRODUCTION) == ("https", "hooks.example.com", 8443)


def test_loopback_is_allowed_only_behind_the_setting_and_never_in_production() -> None:
    assert check_url("http://127.0.0.1:9000/hook", TESTS)[1] == "127.0.0.1"
    with pytest.raises(UrlRefused):
        check_url("http://127.0.0.1:9000/hook", Policy(production=False))
    with pytest.raises(UrlRefused):
        check_url("https://127.0.0.1/hook", Policy(production=True, allow_loopback=True))
    with pytest.raises(UrlRefused, match="link-local"):  # the metadata service stays refused even in the tests
        check_url("http://169.254.169.254/", TESTS)


def _resolver(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    async def getaddrinfo(self: Any, host: str, port: int, **_: Any) -> list[Any]:
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    import asyncio
    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)


async def test_at_delivery_a_name_that_resolves_to_the_metadata_service_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, "169.254.169.254")
    with pytest.raises(UrlRefused, match="link-local"):
        await resolve("https://hooks.example.com/x", PRODUCTION)


async def test_one_private_answer_among_public_ones_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, "93.184.216.34", "10.1.2.3")
    with pytest.raises(UrlRefused, match="private"):
        await resolve("https://hooks.example.com/x", PRODUCTION)


async def test_the_connection_goes_to_the_checked_address_with_the_name_for_host_and_tls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, "93.184.216.34")
    target = await resolve("https://hooks.example.com:8443/in?x=1", PRODUCTION)
    assert (target.url, target.host, target.host_header) == (
        "https://93.184.216.34:8443/in?x=1", "hooks.example.com", "hooks.example.com:8443")
    _resolver(monkeypatch, "2606:2800:220:1::1")
    target = await resolve("https://hooks.example.com/in", PRODUCTION)
    assert target.url == "https://[2606:2800:220:1::1]/in"
