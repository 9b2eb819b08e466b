"""The batch's memory bounds (issue 9): reading waits for the oldest unwritten line, and the
summary's percentiles come from a fixed-size histogram. Its progress bar (issue 10) shows the
time left and what rate limits hold calls back for."""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
from pathlib import Path

import pytest

from aiops.cli.batch import _Latencies, run_batch, window_for
from aiops.providers import Completion, CompletionRequest, Usage
from tests.fixtures_providers import until_still
from tests.unit.test_runner_core import Harness, spec


class FirstLineSlow:
    """A provider that holds the call for `who: "0"` until released; the others answer
    `answer_bytes` characters."""

    name = "p1"

    def __init__(self, answer_bytes: int = 1) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.answer = json.dumps({"answer": "a" * answer_bytes})

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        if request.messages[0]["content"].startswith("Greet 0 "):
            await self.release.wait()
        return Completion(text=self.answer, usage=Usage(input_tokens=1, output_tokens=1))

    async def aclose(self) -> None:
        pass


def held_back(tmp_path: Path, lines: int, answer_bytes: int) -> tuple[int, int]:
    """A batch of `lines` (concurrency 4) whose first line is slow: (how many calls started
    while it was held, the exit code); every line written, in order, after it is released."""
    h = Harness(spec(provider="p2", model="m2", fallbacks=[]), {})  # p2: no rate limit
    provider = FirstLineSlow(answer_bytes)
    h.runner._make = lambda name, pspec, env: provider
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"who": str(i)}) + "\n" for i in range(lines)),
                      encoding="utf-8")
    out = tmp_path / "out.jsonl"

    async def go() -> tuple[int, int]:
        batch = asyncio.ensure_future(run_batch(h.runner, "greet", source, out, 4))
        held = await until_still(lambda: provider.calls, 5)
        provider.release.set()
        return held, await batch

    held, code = asyncio.run(go())
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [e["line"] for e in written] == list(range(1, lines + 1))
    assert all(len(e["output"]["answer"]) == answer_bytes for e in written)
    assert provider.calls == lines and len(h.store.logs) == lines
    return held, code


def test_a_slow_line_holds_reading_back_instead_of_letting_results_pile_up(
        tmp_path: Path) -> None:
    """Every line after a slow one used to be read, run and kept in memory until it finished;
    now reading stops `window_for(concurrency)` lines ahead of it, and resumes after."""
    assert held_back(tmp_path, 3000, 1) == (window_for(4), 0)
    assert window_for(4) == 1024


def test_results_waiting_for_a_slow_line_are_bounded_in_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window was counted in lines only: 1,024 results of 500 KB waiting for a slow line
    are 500 MB. Now reading also stops when MAX_WAITING_BYTES of results wait (100 KB here:
    about ten 10 KB results, and the four in flight)."""
    monkeypatch.setattr("aiops.cli.batch.MAX_WAITING_BYTES", 100_000, raising=False)
    held, code = held_back(tmp_path, 300, 10_000)
    assert 10 <= held <= 10 + 4 + 2 and code == 0


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


def test_the_progress_bar_shows_what_calls_wait_for_and_the_time_left() -> None:
    from rich.console import Console

    from aiops.cli.progress import batch_progress

    h = Harness(spec(), {})
    waits = h.runner.limiter.waits
    console = Console(file=io.StringIO(), record=True, width=200)
    progress = batch_progress(console, h.runner)
    task = progress.add_task("summarize", total=300)
    progress.advance(task, 100)
    what = "groq/llama-3.1-8b-instant tpm 6000"
    with waits.waiting(what, time.monotonic() + 4.4), \
            waits.waiting(what, time.monotonic() + 30), \
            waits.waiting("function:summarize rpm 120", time.monotonic() + 1):
        console.print(progress.get_renderable())
    waits.passed(what)
    console.print(progress.get_renderable())
    throttled, after = console.export_text().splitlines()
    # The pace so far is unknown here; the time left is at least the longest wait (30 s).
    assert "100/300" in throttled and "eta 0:00:30" in throttled, throttled
    assert (f"waiting for {what}: 2 calls, next in 4s (and 1 other limit(s))"
            in throttled), throttled
    assert "waiting" not in after and after.rstrip().endswith("1 went to a fallback")
    assert "eta -:--:--" in after
