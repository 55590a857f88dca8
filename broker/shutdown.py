"""Stopping a worker process on SIGTERM or SIGINT within a bound, whatever it is waiting on.

The first signal asks the worker to stop (finish the batch in hand, commit, close). If it has not
exited ``grace_s`` later (a broker that is gone can hold a commit or a consumer close for long)
the process exits anyway: offsets are committed only after their effects, so the next owner of
the partitions redoes whatever was in hand. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

FORCED_EXIT_CODE = 70


def stop_on_signals(stop: Callable[[], None], *, grace_s: float = 8.0) -> None:
    """Call ``stop`` on SIGTERM/SIGINT, then exit the process if it is still running ``grace_s`` later."""
    loop = asyncio.get_running_loop()
    asked = threading.Event()

    def force() -> None:
        log.error("did not stop within %.0f s of the signal; exiting now (work in hand is redone by the next owner)",
                  grace_s)
        logging.shutdown()
        os._exit(FORCED_EXIT_CODE)

    def on_signal() -> None:
        if asked.is_set():
            force()
        asked.set()
        log.info("stopping")
        timer = threading.Timer(grace_s, force)
        timer.daemon = True
        timer.start()
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
