"""The batch's memory bounds (issue 9): reading waits for the oldest unwritten line, and the
summary's percentiles come from a fixed-size histogram."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

from aiops.cli.batch import _Latencies, run_batch, window_for
from aiops.providers import Completion, CompletionRequest, Usage
from tests.unit.test_runner_core import Harness, spec


class FirstLineSlow:
    """A provider that holds the call for `who: "0"` until released; the others answer."""

    name = "p1"

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        if request.messages[0]["content"].startswith("Greet 0 "):
            await self.release.wait()
        return Completion(text='{"answer": "a"}', usage=Usage(input_tokens=1, output_tokens=1))

    async def aclose(self) -> None:
        pass


def test_a_slow_line_holds_reading_back_instead_of_letting_results_pile_up(
        tmp_path: Path) -> None:
    """Every line after a slow one used to be read, run and kept in memory until it finished;
    now reading stops `window_for(concurrency)` lines ahead of it, and resumes after."""
    h = Harness(spec(provider="p2", model="m2", fallbacks=[]), {})  # p2: no rate limit
    provider = FirstLineSlow()
    h.runner._make = lambda name, pspec, env: provider
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"who": str(i)}) + "\n" for i in range(3000)),
                      encoding="utf-8")
    out = tmp_path / "out.jsonl"

    async def go() -> tuple[int, int]:
        batch = asyncio.ensure_future(run_batch(h.runner, "greet", source, out, 4))
        for _ in range(500):
            if provider.calls >= window_for(4):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # more would have started by now if reading went on
        held = provider.calls
        provider.release.set()
        return held, await batch

    held, code = asyncio.run(go())
    assert held == window_for(4) == 1024
    assert code == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [e["line"] for e in lines] == list(range(1, 3001))
    assert provider.calls == 3000 and len(h.store.logs) == 3000


def test_latency_percentiles_are_within_one_percent_in_constant_memory() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(3, 2) for _ in range(200_000)] + [0.0, 1e-9]
    latencies = _Latencies()
    for v in values:
        latencies.add(v)
    exact = sorted(values)
    for q in (0.01, 0.5, 0.95, 0.99):
        truth = exact[min(len(exact) - 1, int(q * len(exact)))]
        approx = latencies.quantile(q)
        assert approx is not None and abs(approx / truth - 1) <= 0.01, (q, approx, truth)
    assert len(latencies.counts) < 1300  # buckets, not values
    assert _Latencies().quantile(0.5) is None
