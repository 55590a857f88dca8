"""What Meta's limits cost the dispatcher a send, at one rate: ``python -m bench.limiter_cost [--sends 8000]
[--rounds 2]`` (about 3 minutes).

The same stack as ``aerostic bench dispatch``. In each round, alternated:

- the dispatcher with limits off, its requests trickled in at the 1,000 msg/s number's pace (``PACE`` a second, a
  tenth of a second's worth every ``TICK_S``), then with limits on at that pace and with a backlog queued at once:
  its CPU milliseconds a send in each (``limits_off``, ``limits_on``, ``limits_on_backlog``);
- a bare aiohttp loop against the simulator at the same pace, one call every slot (1.08 ms) and ``burst`` calls
  every ``burst`` slots: the client's and the simulator's CPU milliseconds a call. With limits on, every call goes
  alone one slot after the last, so each of its writes wakes the simulator; this is what calls going a few at a
  time would save.

``RESULT limiter_cost limits_off_ms=… limits_on_ms=… limits_on_backlog_ms=… on_off_ratio=… bare_1_ms=… bare_5_ms=…
bare_10_ms=… sim_1_ms=… sim_5_ms=… sim_10_ms=…`` (medians over the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import aiohttp
import psutil
import uvloop

from bench.dispatch import Bench, wait_accepted
from bench.e2e import own_cpu_s

PACE = 925  # calls a second: the 1,000 msg/s number's, less the limiter's margin
TICK_S = 0.01
BURSTS = (1, 5, 10)
WARM_UP = 300


def trickle(bench: Bench, number: str, count: int) -> None:
    """Queue ``count`` requests of ``number`` at ``PACE`` a second, ``PACE * TICK_S`` at a time."""
    began, queued = time.monotonic(), 0
    while queued < count:
        due = min(count, int((time.monotonic() - began) * PACE) + int(PACE * TICK_S))
        if due > queued:
            bench.produce(number, due - queued)
            queued = due
        time.sleep(TICK_S / 2)


def dispatcher_ms(bench: Bench, sends: int, *, limits: bool, backlog: bool = False) -> float:
    """One dispatcher's CPU milliseconds a send, over ``sends`` sends."""
    number = "n1000" if limits else "max"
    with bench.dispatcher() if limits else bench.dispatcher(rate_limits="false"):
        bench.reset()
        bench.produce(number, WARM_UP)
        wait_accepted(bench, WARM_UP, timeout=60)
        bench.reset()
        before = bench.cpu()
        if backlog:
            bench.produce(number, sends)
        else:
            trickle(bench, number, sends)
        wait_accepted(bench, sends, timeout=sends / PACE * 3 + 30)
        return (bench.cpu() - before) * 1000 / sends


async def bare_ms(bench: Bench, calls: int, burst: int) -> tuple[float, float]:
    """A bare aiohttp loop at ``PACE``, ``burst`` calls at a time: its and the simulator's CPU ms a call."""
    simulator = psutil.Process(bench.stack.children["metasim"].pid)
    url, headers = bench.send_target("max")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        async def call(i: int) -> None:
            body = json.dumps({"messaging_product": "whatsapp", "to": f"2{i:010d}", "type": "text",
                               "text": {"body": "x"}}).encode()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()

        await asyncio.gather(*(call(i) for i in range(64)))  # the connections are open
        loop = asyncio.get_running_loop()
        own, sim, began = own_cpu_s(), sum(simulator.cpu_times()[:2]), loop.time()
        tasks = []
        for first in range(0, calls, burst):
            if (delay := began + first / PACE - loop.time()) > 0:
                await asyncio.sleep(delay)
            tasks += [asyncio.create_task(call(first + i)) for i in range(burst)]
        await asyncio.gather(*tasks)
        return (own_cpu_s() - own) * 1000 / calls, (sum(simulator.cpu_times()[:2]) - sim) * 1000 / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limiter_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    figures: dict[str, list[float]] = {}
    bench = Bench()
    try:
        bench.start()
        for round_ in range(args.rounds):
            measured = {"limits_off_ms": dispatcher_ms(bench, args.sends, limits=False),
                        "limits_on_ms": dispatcher_ms(bench, args.sends, limits=True),
                        "limits_on_backlog_ms": dispatcher_ms(bench, args.sends, limits=True, backlog=True)}
            for burst in BURSTS:
                measured[f"bare_{burst}_ms"], measured[f"sim_{burst}_ms"] = uvloop.run(
                    bare_ms(bench, args.sends, burst))
            print(f"round {round_}: " + " ".join(f"{name}={value:.3f}" for name, value in measured.items()),
                  flush=True)
            for name, value in measured.items():
                figures.setdefault(name, []).append(value)
    finally:
        bench.stop()
    medians = {name: statistics.median(values) for name, values in figures.items()}
    medians["on_off_ratio"] = medians["limits_on_ms"] / medians["limits_off_ms"]
    order = ["limits_off_ms", "limits_on_ms", "limits_on_backlog_ms", "on_off_ratio",
             *(f"bare_{b}_ms" for b in BURSTS), *(f"sim_{b}_ms" for b in BURSTS)]
    print("RESULT limiter_cost " + " ".join(f"{name}={medians[name]:.3f}" for name in order), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
