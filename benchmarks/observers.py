"""What monitoring costs the runner (DESIGN §8, §10): the runner's own time per call (all but
the provider call: validation, rendering, parse, output validation, the log row handed to its
writer) with no observer, with the Prometheus counters of `aiops serve` (in multiprocess mode,
as the server runs them: each count is a write to a memory-mapped file), with OpenTelemetry
tracing (the SDK, spans batched to an exporter that drops them), with tracing and content,
and with both; plus each one's A/B difference in wall time per call over the same mock, and
in the CPU time of the event loop's thread per call (the observers run there: this difference
is theirs, and holds up on a loaded machine where wall times do not).

Each side is its own Runner over the same project, database and mock (in its own process);
calls are interleaved in a shuffled order each round, so that drift affects every side alike.

    .venv/bin/python benchmarks/observers.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The server's mode: set before anything imports prometheus_client.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="aiops-bench-metrics-")

sys.path.insert(0, str(Path(__file__).parent))
from runner import INPUT, bench_env, make_project, pct, start_mock


class Dropped:
    """A span exporter that keeps nothing (the cost measured is aiops's and the SDK's)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


async def measure(root: Path, db: str, url: str, calls: int) -> dict[str, list[list[float]]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from aiops import commands, metrics, tracing
    from aiops.runner import Runner

    ws = commands.open_workspace(root, database_url=db)
    env = bench_env(url)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))  # type: ignore[arg-type]
    store = ws.open_store()

    def traced(content: bool) -> tuple[Any, ...]:
        return tracing.from_env({"AIOPS_OTEL": "on", "AIOPS_OTEL_CONTENT": "on" if content
                                 else "off"}, ws.providers, str, tracer_provider=provider)

    observers: dict[str, tuple[Any, ...]] = {
        "no observer": (), "metrics": (metrics.OBSERVER,), "tracing": traced(False),
        "tracing + content": traced(True), "metrics + tracing": (metrics.OBSERVER,
                                                                  *traced(False))}
    runners = {name: Runner(store=store, providers=ws.providers, env=env, actor="bench",
                            observers=obs) for name, obs in observers.items()}
    times: dict[str, list[list[float]]] = {name: [[], [], []] for name in runners}
    order = list(runners.items())
    shuffle = random.Random(0).shuffle
    for i in range(calls + 200):
        shuffle(order)
        for name, runner in order:
            start, cpu = time.perf_counter(), time.thread_time()
            ex = await runner.run("bench", INPUT)
            wall = (time.perf_counter() - start) * 1000
            cpu = (time.thread_time() - cpu) * 1000
            assert ex.ok, ex.error
            if i >= 200:  # warm-up excluded
                times[name][0].append(wall - ex.attempts[-1].latency_ms)
                times[name][1].append(wall)
                times[name][2].append(cpu)
    for runner in runners.values():
        await runner.aclose()
    provider.shutdown()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = make_project(root)
        mock, url = start_mock(0)
        try:
            times = asyncio.run(measure(root, db, url, args.calls))
        finally:
            mock.terminate()
            mock.wait()
    base_own, base_wall, base_cpu = times["no observer"]
    print(f"Runner own time per call over {args.calls} sequential calls per side (mock at "
          "0 ms, in its own process; Prometheus in multiprocess mode):")
    print(f"  {'':20} {'own p50':>8} {'own p99':>8} {'+own p50':>9} {'+own p99':>9} "
          f"{'+wall p50':>9} {'+CPU p50':>9}   ms")
    for name, (own, wall, cpu) in times.items():
        print(f"  {name:20} {pct(own, 0.5):8.3f} {pct(own, 0.99):8.3f} "
              f"{pct(own, 0.5) - pct(base_own, 0.5):9.3f} "
              f"{pct(own, 0.99) - pct(base_own, 0.99):9.3f} "
              f"{pct(wall, 0.5) - pct(base_wall, 0.5):9.3f} "
              f"{pct(cpu, 0.5) - pct(base_cpu, 0.5):9.3f}")
    worst50 = max(pct(own, 0.5) for own, _, _ in times.values())
    worst99 = max(pct(own, 0.99) for own, _, _ in times.values())
    print(f"  targets (DESIGN §10): own time p50 <= 1 ms, p99 <= 5 ms on every side: "
          f"worst p50 {worst50:.3f} ms, worst p99 {worst99:.3f} ms")


if __name__ == "__main__":
    main()
