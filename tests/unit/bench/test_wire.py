"""``bench.wire``: the Graph calls' arrival times read from a loopback capture."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from bench import wire


def _packet(payload: bytes) -> bytes:
    """An Ethernet frame holding an IPv4 packet (options included) and a TCP segment (with options) of ``payload``."""
    tcp = struct.pack("!HHIIBBHHH", 50000, 8080, 1, 1, 8 << 4, 0x18, 65535, 0, 0) + b"\x01" * 12
    ip = struct.pack("!BBHHHBBH4s4s", 0x46, 0, 24 + len(tcp) + len(payload), 0, 0, 64, 6, 0,
                     b"\x7f\0\0\1", b"\x7f\0\0\1") + b"\0" * 4
    return b"\0" * 12 + b"\x08\x00" + ip + tcp + payload


def _pcap(packets: list[tuple[float, bytes]], *, nano: bool = False, snap: int = 300) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65535, wire.ETHERNET)
    for at, frame in packets:
        seconds = int(at)
        part = round((at - seconds) * (1e9 if nano else 1e6))
        kept = frame[:snap]
        out += struct.pack("<IIII", seconds, part, len(kept), len(frame)) + kept
    return out


@pytest.mark.parametrize("nano", [False, True])
def test_only_the_posts_to_the_path_are_timed(nano: bool) -> None:
    body = b"x" * 400  # longer than the snap length: cut, still read
    pcap = _pcap([
        (1000.25, _packet(b"POST /v23.0/111/messages HTTP/1.1\r\nHost: x\r\n\r\n" + body)),
        (1000.50, _packet(b"GET /v23.0/111/messages HTTP/1.1\r\n\r\n")),
        (1000.75, _packet(b"POST /v23.0/222/messages HTTP/1.1\r\n\r\n")),
        (1001.125, _packet(b"POST /v23.0/111/messages HTTP/1.1\r\n\r\n")),
        (1001.5, _packet(b"Host: x\r\nPOST /v23.0/111/messages\r\n")),  # not a request's first line
    ], nano=nano)
    assert wire.request_times(pcap, b"/111/messages") == pytest.approx([1000.25, 1001.125])


def test_a_link_type_it_cannot_read_is_refused() -> None:
    pcap = bytearray(_pcap([]))
    pcap[20:24] = struct.pack("<I", 228)  # raw IPv4
    with pytest.raises(ValueError, match="link type 228"):
        wire.request_times(bytes(pcap), b"/111/messages")


def test_no_capture_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "available", lambda: False)
    with wire.capture(1) as capture:
        pass
    assert capture.times("/messages") is None


@pytest.fixture
def server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(not wire.available(), reason="tcpdump cannot capture here (scripts/install.sh installs it)")
def test_a_real_capture_times_each_call_on_the_wire(server: int) -> None:
    with wire.capture(server) as capture, httpx.Client() as client:  # one connection: later calls reuse it
        began = time.time()
        for i in range(5):
            client.post(f"http://127.0.0.1:{server}/v23.0/{111 if i % 2 else 222}/messages", json={"i": i})
        ended = time.time()
    times = capture.times("/111/messages")
    assert times is not None and len(times) == 2
    assert all(began - 0.5 <= t <= ended + 0.5 for t in times)  # the kernel's clock, the same as time.time()
    assert len(capture.times("/222/messages") or []) == 3
