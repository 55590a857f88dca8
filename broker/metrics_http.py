"""Serving a process's Prometheus metrics: ``GET /metrics`` on a port of its own, in a daemon thread.

Every Aerostic process calls ``serve_metrics`` at start-up with its settings' ``metrics_port`` (0: no server)
and ``metrics_host``. The port is never the web server's public one: metrics stay on the internal network
(the default host is loopback; a container binds ``0.0.0.0`` and publishes the port to the scraper only).
The default registry also carries the client's process collector (``process_cpu_seconds_total``,
``process_resident_memory_bytes``…), which the benchmarks read.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def serve_metrics(port: int, host: str = "127.0.0.1") -> Any:
    """Start the metrics server on ``host:port``; returns it (``shutdown()`` stops it), or None when port is 0."""
    if not port:
        return None
    server, _thread = start_http_server(port, addr=host)
    log.info("metrics at http://%s:%d/metrics", host, port)
    return server
