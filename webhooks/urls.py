"""Where a tenant's webhook may go (SSRF): checked when an endpoint is saved and again at every delivery.

A URL must be ``https`` in production (``http`` is accepted elsewhere), carry no credentials, and every address
its host resolves to must be a public unicast one: never private, loopback, link-local (169.254.169.254, the
cloud metadata service), multicast, reserved, unspecified or shared (100.64/10). At delivery the host is resolved
once, every answer checked, and the connection goes to a checked address (``Target``), so a name that resolves
differently a moment later (DNS rebinding) cannot redirect it; redirects are never followed. Loopback is allowed
only when ``allow_loopback`` is set (never in production): the tests' receiver listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why (never quoting more than the host)."""


@dataclass(frozen=True)
class Policy:
    production: bool
    allow_loopback: bool = False


@dataclass(frozen=True)
class Target:
    """Where one delivery connects: the checked address, with the name for ``Host`` and TLS."""

    url: str  # the URL with the checked address in place of the host
    host: str  # the name as written (Host header, TLS server name)
    host_header: str


def address_refusal(ip: IPAddress, policy: Policy) -> str | None:
    """Why a connection to ``ip`` is refused, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if policy.allow_loopback and not policy.production else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if ip.is_private or not ip.is_global:
        return "a private address"
    return None


def check_url(url: str, policy: Policy) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an acceptable URL (syntax only: addresses are checked by ``resolve``)."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("not a URL") from exc
    if parts.scheme not in ("https", "http"):
        raise UrlRefused("the URL must be https")
    if parts.scheme == "http" and policy.production:
        raise UrlRefused("the URL must be https")
    if parts.username or parts.password:
        raise UrlRefused("the URL may not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host")
    if host == "localhost" or host.endswith(".localhost"):
        if not policy.allow_loopback or policy.production:
            raise UrlRefused(f"{host} is a loopback address")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and (why := address_refusal(literal, policy)):
        raise UrlRefused(f"{host} is {why}")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


async def resolve(url: str, policy: Policy) -> Target:
    """Check ``url``, resolve its host and check every address; the ``Target`` to connect to."""
    scheme, host, port = check_url(url, policy)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlRefused(f"{host} does not resolve") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise UrlRefused(f"{host} does not resolve")
    for address in addresses:
        if why := address_refusal(address, policy):
            raise UrlRefused(f"{host} resolves to {why}")
    chosen = addresses[0]
    parts = urlsplit(url)
    shown = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    default_port = 443 if scheme == "https" else 80
    netloc = shown if port == default_port else f"{shown}:{port}"
    host_header = parts.netloc.rpartition("@")[2]
    return Target(url=parts._replace(netloc=netloc).geturl(), host=host, host_header=host_header)
