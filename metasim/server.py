"""Run the Meta simulator as its own process: one uvicorn worker on uvloop and httptools.

One process on purpose: the limits, counters and webhook queue live in memory and must be shared by
every request. Point the dispatcher's ``graph_base_url`` at ``http://<host>:<port>``.
"""

from __future__ import annotations

import uvicorn

from metasim.app import create_app
from metasim.state import SimConfig

DEFAULT_PORT = 8900


def run(config: SimConfig, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, log_level: str = "warning") -> None:
    """Serve the simulator until interrupted (blocks)."""
    uvicorn.run(create_app(config), host=host, port=port, loop="uvloop", http="httptools", access_log=False,
                log_level=log_level, backlog=4096, timeout_keep_alive=30, timeout_graceful_shutdown=5)
