"""The Python API's cost per call (issue 11: an application calling `ws.run()` 1,000 times
must not reopen the database each time), against the mock provider in its own process.

Sequential calls of one function, interleaved in a shuffled order each round so that drift
affects each side alike, after a warm-up:

    direct SDK         the same request from the OpenAI SDK: the floor
    Runner.run         the runner, called directly (what the CLI and the server use)
    await ws.arun      the public async form, on the caller's event loop
    ws.run             the public sync form, through the workspace's private event loop
    commands.run       the verb without a session: a runner opened and closed per call

Each figure is a per-call time in ms (p50, p99); "over floor" is the p50 minus the direct
SDK's. Then the first call of a new process (`import aiops`, open, first run) as a command.

    .venv/bin/python benchmarks/python_api.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from runner import (  # benchmarks/runner.py: the same project, mock and SDK floor
    INPUT,
    bench_env,
    make_project,
    pct,
    sdk_client,
    sdk_post,
    start_mock,
)

SESSIONLESS_EVERY = 10  # commands.run is slow: one call every this many rounds


async def measure(root: Path, db: str, url: str, calls: int) -> dict[str, list[float]]:
    import aiops
    from aiops import commands

    ws = aiops.open(root, database_url=db, actor="bench")
    inner = commands.open_workspace(root, database_url=db)
    runner = commands.open_runner(inner, actor="bench")
    client = sdk_client(url)

    async def via_sync() -> None:  # blocks this loop; the work runs on the private one
        ws.run("bench", INPUT)

    async def via_runner() -> None:
        assert (await runner.run("bench", INPUT)).ok

    async def via_arun() -> None:
        await ws.arun("bench", INPUT)

    async def sessionless() -> None:
        assert (await commands.run(inner, "bench", INPUT, actor="bench")).ok

    sides: dict[str, Callable[[], Awaitable[None]]] = {
        "direct SDK": lambda: sdk_post(client), "Runner.run": via_runner,
        "await ws.arun": via_arun, "ws.run": via_sync}
    times: dict[str, list[float]] = {k: [] for k in [*sides, "commands.run"]}
    order = list(sides.items())
    shuffle = random.Random(0).shuffle
    warm = 100
    for i in range(calls + warm):
        shuffle(order)
        rounds = [*order, ("commands.run", sessionless)] if i % SESSIONLESS_EVERY == 0 else order
        for name, fn in rounds:
            start = time.perf_counter()
            await fn()
            if i >= warm:
                times[name].append((time.perf_counter() - start) * 1000)
    await runner.aclose()
    await ws.aclose()
    await client.close()
    return times


FIRST_CALL = """
import sys, time
start = time.perf_counter()
import aiops
with aiops.open(sys.argv[1], database_url=sys.argv[2]) as ws:
    ws.run("bench", {"subject": "Charged twice", "body": "Refund one."})
    first = time.perf_counter()
    ws.run("bench", {"subject": "Charged twice", "body": "Refund one."})
    second = time.perf_counter()
print(f"{(first - start) * 1000:.0f} {(second - first) * 1000:.1f}")
"""


def first_call(root: Path, db: str, url: str, repeat: int = 5) -> tuple[float, float]:
    """A new process: import aiops, open, the first run (and the second, for contrast)."""
    firsts, seconds = [], []
    env = {**os.environ, **bench_env(url)}
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", FIRST_CALL, str(root), db], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        firsts.append(float(out[0]))
        seconds.append(float(out[1]))
    return statistics.median(firsts), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    proc, url = start_mock(0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            db = make_project(root)
            os.environ.update(bench_env(url))
            times = asyncio.run(measure(root, db, url, args.calls))
            first, second = first_call(root, db, url)
    finally:
        proc.terminate()
        proc.wait()
    floor = statistics.median(times["direct SDK"])
    print(f"{args.calls} sequential calls per side (commands.run: every "
          f"{SESSIONLESS_EVERY}th round), mock latency 0, SQLite")
    print(f"{'side':16} {'p50 ms':>8} {'p99 ms':>8} {'over floor':>11}")
    for name, values in times.items():
        p50 = statistics.median(values)
        print(f"{name:16} {p50:8.3f} {pct(values, 0.99):8.3f} {p50 - floor:11.3f}")
    print(f"new process: import, open and first run {first:.0f} ms; its second run "
          f"{second:.1f} ms")


if __name__ == "__main__":
    main()
