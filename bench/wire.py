"""When the Graph calls reached the simulator's socket, by the kernel's clock: ``tcpdump`` on the loopback.

The simulator stamps each call when its handler starts. On a busy machine its event loop waits for the CPU, and
calls that came spread out are then stamped together: a 1-second window can count more than the dispatcher sent
in it (session 50: windows of 1,004 at the simulator's clock in a slow spell, while on the wire no window held more
than 991). The kernel timestamps each packet as the dispatcher writes it, whatever the simulator's loop is doing, so
the benches count the limit's windows on both clocks.

Optional: it needs ``tcpdump`` and the right to capture (root, or ``cap_net_raw``); without them ``times`` is
``None`` and the bench prints ``na``. ``scripts/install.sh`` installs tcpdump where it installs Chromium.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SNAP_BYTES = 300  # enough of each packet for the request line
ETHERNET, LINUX_SLL = 1, 113  # the link types the loopback is captured with
LINK_HEADER = {ETHERNET: 14, LINUX_SLL: 16}
# Packets to the simulator's port whose TCP payload starts with "POST": each request's first segment.
FILTER = "tcp dst port {port} and tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x504f5354"


def available() -> bool:
    """tcpdump is installed and this process may capture (root; a capability-granted tcpdump is not checked)."""
    return shutil.which("tcpdump") is not None and os.geteuid() == 0


class Capture:
    """One capture, read once it has stopped (``None``: nothing was captured, tcpdump cannot run here)."""

    def __init__(self) -> None:
        self.pcap: bytes | None = None

    def times(self, path_part: str) -> list[float] | None:
        """Sorted arrival times of the POSTs whose request line contains ``path_part`` (``None``: no capture)."""
        if self.pcap is None:
            return None
        return sorted(request_times(self.pcap, path_part.encode()))


@contextmanager
def capture(port: int) -> Iterator[Capture]:
    """Capture the POSTs to ``port`` on the loopback while the block runs (nothing, where tcpdump cannot)."""
    result = Capture()
    if not available():
        yield result
        return
    with tempfile.TemporaryDirectory(prefix="aerostic-wire-") as tmp:
        path = Path(tmp) / "calls.pcap"
        dump = subprocess.Popen(
            # --immediate-mode: each packet as it comes (buffered, the last second's were lost when it was stopped)
            ["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-s", str(SNAP_BYTES), "-w", str(path),
             FILTER.format(port=port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _await_listening(dump)
            yield result
        finally:
            dump.terminate()
            dump.wait(timeout=10)
            result.pcap = path.read_bytes() if path.exists() else b""


def _await_listening(dump: subprocess.Popen[bytes]) -> None:
    """Return once tcpdump says it listens (its first line on stderr, written once the capture is open, or its
    error before it exits), so no early call is missed."""
    assert dump.stderr is not None
    line = dump.stderr.readline()
    if b"listening" not in line:
        raise RuntimeError(f"tcpdump did not start: {line.decode(errors='replace').strip()}")


def request_times(pcap: bytes, path_part: bytes) -> list[float]:
    """The capture times of the packets in ``pcap`` (the classic libpcap format) whose payload's first line holds
    ``path_part``."""
    if len(pcap) < 24:
        return []
    magic = pcap[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    fraction = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    link = struct.unpack(order + "I", pcap[20:24])[0]
    if link not in LINK_HEADER:
        raise ValueError(f"link type {link} is not read")
    times, at = [], 24
    while at + 16 <= len(pcap):
        seconds, part, captured, _ = struct.unpack(order + "IIII", pcap[at:at + 16])
        packet = pcap[at + 16:at + 16 + captured]
        at += 16 + captured
        ip = packet[LINK_HEADER[link]:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        tcp = ip[(ip[0] & 0x0F) * 4:]
        if len(tcp) < 20:
            continue
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload.startswith(b"POST ") and path_part in payload.split(b"\r\n", 1)[0]:
            times.append(seconds + part * fraction)
    return times
