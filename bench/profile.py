"""Profile the e2e pipeline at a fixed rate: ``python -m bench.profile [--rate 20] [--seconds 30] [--out DIR]``.

Starts the same stack as ``aerostic bench e2e``, warms it up, then asks questions at ``--rate`` for
``--seconds`` while ``py-spy record --format raw`` samples each Aerostic process (stream worker, projector,
AI worker, dispatcher, ingress, deliverer; py-spy needs root or ptrace rights) and psutil reads every process's CPU,
the broker's (a native binary py-spy cannot read) included. Writes each process's collapsed stacks to
``DIR/<name>.txt`` and prints, per process, its CPU share and the five frames with the most samples of their
own (``top_frames``). Only the thread holding the GIL is sampled unless ``--all-threads``; ``--native`` adds the
C frames (uvloop's, asyncpg's protocol, the system calls under them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.e2e import E2E, cpu_per_question, cpu_seconds

PROFILED = ("streams", "projector", "ai", "dispatcher", "ingress", "deliverer")


def top_frames(collapsed: str, count: int = 5) -> list[tuple[str, int, float]]:
    """From py-spy's raw (collapsed) output: the leaf frames with the most samples, their samples and share."""
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        own[stack.rsplit(";", 1)[-1].strip()] += int(samples)
    return [(frame, n, n / total) for frame, n in own.most_common(count)] if total else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="aerostic-profile-")))
    parser.add_argument("--all-threads", action="store_true",
                        help="sample every active thread (default: only the one holding the GIL, i.e. Python's work; "
                             "the Kafka client's C calls release it)")
    parser.add_argument("--native", action="store_true",
                        help="with the C frames too (uvloop's, asyncpg's protocol, the system calls under them); "
                             "pauses the process at each sample, as py-spy must to read them")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    bench = E2E()
    try:
        sim = bench.start()
        asyncio.run(bench.tenant())
        asyncio.run(sim.run(20, 2.0, 60.0))
        recorders = {name: subprocess.Popen(
            [spy, "record", "--pid", str(bench.stack.children[name].pid), "--format", "raw", "--rate", "100",
             "--duration", str(args.seconds + 5), "--output", str(args.out / f"{name}.txt"),
             *([] if args.all_threads else ["--gil"]), *(["--native"] if args.native else ["--nonblocking"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for name in PROFILED}
        before = cpu_seconds(bench.stack)
        began = time.monotonic()
        run = asyncio.run(sim.run(args.rate, args.seconds, 15.0))
        cpu = cpu_per_question(before, cpu_seconds(bench.stack), len(run.sent))
        wall = time.monotonic() - began
        for recorder in recorders.values():
            recorder.wait(timeout=120)
    finally:
        bench.stop()
    step = run.step()
    print(step.line("profile"), flush=True)
    total = sum(cpu.values())
    print(f"cpu over {wall:.0f}s, ms per question (share): " + " ".join(
        f"{k}={v:.1f} ({v / total:.0%})" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])), flush=True)
    for name in PROFILED:
        path = args.out / f"{name}.txt"
        frames = top_frames(path.read_text()) if path.exists() else []
        print(f"\n{name} (cpu_ms/q {cpu.get(name, 0.0):.1f}):", flush=True)
        for frame, samples, share in frames:
            print(f"  {share:6.1%} {samples:6d}  {frame}", flush=True)
    print(f"\nprofiles in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
