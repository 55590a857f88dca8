"""The local stack runs the roles off a customer's reply path at a lower CPU priority, every thread of them."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from stack.launcher import BACKGROUND_NICE, LocalStack
from tests.integration.helpers import wait_for

ROLES = ("ingress", "streams", "campaigns", "ai", "dispatcher", "projector", "deliverer")


def _niceness(pid: int) -> set[int]:
    """The niceness of each of the process's threads (a thread keeps the value of the thread that made it)."""
    return {os.getpriority(os.PRIO_PROCESS, int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}


async def test_the_projector_and_the_deliverer_yield_the_cores_to_the_reply_path(stack: LocalStack) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        async def serving() -> bool:  # metrics are served right after the priority is set
            for name in ROLES:
                try:
                    (await client.get(stack.metrics_url(name))).raise_for_status()
                except httpx.HTTPError:
                    return False
            return True

        await wait_for(serving, timeout=120, what="every role to serve its metrics")
    niceness = {name: _niceness(stack.children[name].pid) for name in ROLES}
    assert niceness == {name: {BACKGROUND_NICE} if name in ("projector", "deliverer") else {0} for name in ROLES}
