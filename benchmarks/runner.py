"""Runner benchmarks against the mock provider (DESIGN §10):

1. overhead per call: `aiops` runner (validation, rendering, limits, parse, validation, log row
   to SQLite) over the same call made directly with the OpenAI SDK, p50 and p99, next to
   LiteLLM's `acompletion` on the same mock when LiteLLM is installed;
2. a batch of 10,000 executions at 50 ms mock latency and concurrency 200, against the ideal
   10,000 / 200 × 50 ms = 2.5 s, through the `http` provider and the OpenAI SDK provider, each
   next to its floor: the same calls from a bare client (aiohttp; the OpenAI SDK) with no
   runner, against the same mock in the same run;
3. both again for the same function with a daily budget (`daily_calls` and `daily_budget_usd`,
   large enough never to refuse): what budget accounting costs (DESIGN §10 holds with one).

The mock runs in its own process, so its CPU time is not charged to the client. Calls are
interleaved in a shuffled order each round, so that drift affects each side alike.

    .venv/bin/python benchmarks/runner.py [--calls 2000] [--batch 10000] [--concurrency 200]
        [--database postgresql://USER@HOST/DB]   # default: a temporary SQLite file
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
from pathlib import Path
from typing import Any

import yaml

FUNCTION = {
    "apiVersion": "aiops/v1", "name": "bench", "version": "1.0.0",
    "provider": "bench-openai", "model": "gpt-4o-mini",
    "configuration": {"temperature": 0, "max_tokens": 50},
    "prompt": [{"role": "system", "content": "Route the ticket. Answer with JSON."},
               {"role": "user", "content": "Subject: {{ subject }}\n{{ body }}"}],
    "input_schema": {"type": "object", "required": ["subject", "body"], "properties": {
        "subject": {"type": "string", "minLength": 1}, "body": {"type": "string"}},
        "additionalProperties": False},
    "output_schema": {"type": "object", "required": ["queue", "priority"], "properties": {
        "queue": {"type": "string", "enum": ["billing", "technical", "other"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 4}},
        "additionalProperties": False},
}
PROVIDERS = {"providers": {
    "bench-openai": {"type": "openai", "api_key_env": "BENCH_KEY", "timeout_s": 30,
                     "models": {"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}},
    "bench-http": {"type": "http", "base_url": "http://127.0.0.1:9/aiops", "timeout_s": 30,
                   "models": {"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}},
    "fault-openai": {"type": "openai", "api_key_env": "BENCH_KEY", "timeout_s": 0.5,
                     "models": {"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}},
    "fault-groq": {"type": "groq", "api_key_env": "BENCH_KEY", "timeout_s": 0.5,
                   "models": {"llama-3.1-8b-instant": {"input_per_mtok": 0.05,
                                                       "output_per_mtok": 0.08}}},
    "fault-http": {"type": "http", "base_url": "http://127.0.0.1:9/aiops", "timeout_s": 0.5},
    "bench-limited": {"type": "openai", "api_key_env": "BENCH_KEY", "timeout_s": 30,
                      "limits": {"rpm": 10_000_000, "tpm": 1_000_000_000},
                      "models": {"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}},
}}
# Far more than any run spends: every call is accounted for, none is refused.
BUDGET = {"daily_calls": 100_000_000, "daily_budget_usd": 1_000_000.0}
INPUT = {"subject": "Charged twice", "body": "My card was charged two times. Refund one."}
# What the provider sends for INPUT to the bench function: the direct-SDK baselines send it too.
MESSAGES = [{"role": "system", "content": "Route the ticket. Answer with JSON."},
            {"role": "user", "content": f"Subject: {INPUT['subject']}\n{INPUT['body']}"}]
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {
    "name": "output", "strict": True, "schema": FUNCTION["output_schema"]}}
SDK_BODY = {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0, "max_tokens": 50,
            "response_format": RESPONSE_FORMAT}


def sdk_client(url: str) -> Any:
    """The OpenAI SDK client as the provider sets it up: aiohttp underneath, no SDK retries."""
    import openai

    return openai.AsyncOpenAI(api_key="sk-bench", base_url=url + "/v1", max_retries=0,
                              http_client=openai.DefaultAioHttpClient(timeout=30))


async def sdk_post(client: Any) -> None:
    """What the provider sends and reads: the SDK's documented `post`, raw JSON back."""
    import httpx2

    response = await client.post("/chat/completions", cast_to=httpx2.Response, body=SDK_BODY)
    response.json()


def start_mock(latency_ms: float, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "aiops", "mock-provider", "--port", "0",
                             "--latency-ms", str(latency_ms), *extra], stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    url = proc.stderr.readline().split()[-1]
    time.sleep(0.3)
    return proc, url


def make_project(root: Path, database: str | None = None) -> str:
    (root / "providers.yaml").write_text(yaml.safe_dump(PROVIDERS))
    for name, provider in (("bench", "bench-openai"), ("bench-limited", "bench-limited"),
                           ("bench-http", "bench-http"), ("bench-budget", "bench-openai"),
                           ("bench-http-budget", "bench-http")):
        fdir = root / "functions" / name
        fdir.mkdir(parents=True)
        data = dict(FUNCTION, name=name, provider=provider)
        if name == "bench-limited":
            data["limits"] = {"rpm": 10_000_000, "tpm": 1_000_000_000, "max_concurrency": 1000}
        if name.endswith("-budget"):
            data["limits"] = BUDGET
        (fdir / "function.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    # Inputs of up to 4 MiB (benchmarks/batch_memory.py --line-bytes): the bound a batch of
    # big lines must hold its memory to is in bytes, not lines.
    fdir = root / "functions" / "bench-big"
    fdir.mkdir(parents=True)
    big = dict(FUNCTION, name="bench-big", provider="bench-http",
               limits={"max_input_bytes": 4 << 20})
    (fdir / "function.yaml").write_text(yaml.safe_dump(big, sort_keys=False))
    fdir = root / "functions" / "bench-faults"
    fdir.mkdir(parents=True)
    faults = dict(FUNCTION, name="bench-faults", provider="fault-openai",
                  fallbacks=[{"provider": "fault-groq", "model": "llama-3.1-8b-instant"},
                             {"provider": "fault-http", "model": "house"}],
                  retry={"max_attempts": 4, "backoff_s": 0.005, "max_backoff_s": 0.05,
                         "repair_attempts": 2})
    (fdir / "function.yaml").write_text(yaml.safe_dump(faults, sort_keys=False))
    url = database or f"sqlite:///{root / 'bench.db'}"
    from aiops import commands
    from aiops.store import open_store

    commands.apply(commands.open_workspace(root, database_url=url),
                   store=open_store(url, migrate=True), actor="bench <bench@example.com>")
    return url


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def overhead(root: Path, db: str, url: str, calls: int) -> dict[str, list[float]]:
    from aiops import commands

    runner = commands.open_runner(commands.open_workspace(root, database_url=db),
                                  env=bench_env(url), actor="bench")
    client = sdk_client(url)
    litellm: Any = None
    try:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm as _litellm

        litellm = _litellm
        litellm.suppress_debug_info = True
    except ImportError:
        pass

    async def direct() -> None:
        await sdk_post(client)

    async def direct_parsed() -> None:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                             temperature=0, max_tokens=50,
                                             response_format=RESPONSE_FORMAT)

    own: dict[str, list[float]] = {"bench": [], "bench-budget": []}

    async def via_runner(name: str, flush: bool = False) -> None:
        start = time.perf_counter()
        ex = await runner.run(name, INPUT)
        if flush:
            await runner.flush()
        assert ex.ok, ex.error
        if name in own and not flush:  # the runner's own time, outside provider.complete
            own[name].append((time.perf_counter() - start) * 1000 - ex.attempts[-1].latency_ms)

    async def via_litellm() -> None:
        await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES,
                                  api_base=url + "/v1", api_key="sk-bench", temperature=0,
                                  max_tokens=50, response_format=RESPONSE_FORMAT,
                                  num_retries=0)

    sides: dict[str, Any] = {"direct SDK": direct, "SDK create(), parsed": direct_parsed,
                             "runner": lambda: via_runner("bench"),
                             "runner + limits": lambda: via_runner("bench-limited"),
                             "runner + budget": lambda: via_runner("bench-budget"),
                             "runner + log write": lambda: via_runner("bench", flush=True)}
    if litellm is not None:
        sides["litellm"] = via_litellm
    times: dict[str, list[float]] = {k: [] for k in sides}
    order = list(sides.items())
    shuffle = random.Random(0).shuffle
    for i in range(calls + 200):
        shuffle(order)  # no side always follows the same one (LiteLLM leaves tasks behind)
        for name, fn in order:
            start = time.perf_counter()
            await fn()
            if i >= 200:  # warm-up excluded
                times[name].append((time.perf_counter() - start) * 1000)
    await runner.aclose()
    await client.close()
    times["runner own time"] = own["bench"][-calls:]
    times["own time + budget"] = own["bench-budget"][-calls:]
    return times


def bench_env(url: str) -> dict[str, str]:
    return {"BENCH_KEY": "sk-bench", "AIOPS_BENCH_OPENAI_BASE_URL": url + "/v1",
            "AIOPS_BENCH_LIMITED_BASE_URL": url + "/v1", "AIOPS_BENCH_HTTP_BASE_URL": url + "/aiops",
            "AIOPS_FAULT_OPENAI_BASE_URL": url + "/v1", "AIOPS_FAULT_GROQ_BASE_URL": url,
            "AIOPS_FAULT_HTTP_BASE_URL": url + "/aiops"}


async def batch(root: Path, db: str, url: str, name: str, n: int,
                concurrency: int) -> tuple[float, int]:
    from aiops import commands

    runner = commands.open_runner(commands.open_workspace(root, database_url=db),
                                  env=bench_env(url), actor="bench")
    await runner.run(name, INPUT)  # resolve and connect before the clock starts
    inputs = [dict(INPUT, body=f"{INPUT['body']} #{i}") for i in range(n)]
    ok = [0]

    def count(index: int, result: Any) -> None:
        ok[0] += getattr(result, "ok", False)

    start = time.perf_counter()
    await runner.run_many(name, inputs, concurrency=concurrency, on_result=count)
    await runner.flush()
    elapsed = time.perf_counter() - start
    await runner.aclose()
    return elapsed, ok[0]


async def raw_floor(url: str, n: int, concurrency: int) -> float:
    """The same number of requests from a bare aiohttp client: the floor any client reaches
    on this machine with this mock (it shares the two cores with the mock's process)."""
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> None:
            async with gate, session.post(f"{url}/v1/chat/completions", json=SDK_BODY,
                                          headers={"authorization": "Bearer x"}) as response:
                await response.read()

        await one()
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - start


async def sdk_floor(url: str, n: int, concurrency: int) -> float:
    """The same calls through the bare OpenAI SDK, as the provider makes them (its client over
    aiohttp, `post` with a raw response, no retries), with no runner: the SDK's own floor."""
    client = sdk_client(url)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await sdk_post(client)

    await one()
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


async def faults(root: Path, db: str, url: str, n: int) -> tuple[float, int, int, int]:
    """n executions with 30% injected faults: (seconds, ok, log rows, rows with attempts)."""
    from aiops import commands
    from aiops.store import open_store

    store = open_store(db)
    before = {r.id for r in store.recent_logs("bench-faults", limit=10 * n)}
    runner = commands.open_runner(commands.open_workspace(root), env=bench_env(url),
                                  store=store, actor="bench")
    inputs = [dict(INPUT, body=f"{INPUT['body']} #{i}") for i in range(n)]
    results: list[Any] = []
    start = time.perf_counter()
    await runner.run_many("bench-faults", inputs, concurrency=100,
                          on_result=lambda i, r: results.append(r))
    await runner.aclose()
    elapsed = time.perf_counter() - start
    rows = [r for r in store.recent_logs("bench-faults", limit=10 * n) if r.id not in before]
    ids = {getattr(r, "log_id", None) for r in results}
    matching = sum(1 for r in rows if r.id in ids and r.metadata.get("attempts"))
    return elapsed, sum(1 for r in results if getattr(r, "ok", False)), len(rows), matching


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--faults", type=int, default=10_000,
                        help="executions of the 30%% fault run (0 to skip)")
    parser.add_argument("--database", help="the database the runner logs to and keeps budgets "
                        "in (its bench functions are applied there); default: a temporary "
                        "SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = make_project(root, args.database)
        fast, fast_url = start_mock(0)
        try:
            times = asyncio.run(overhead(root, db, fast_url, args.calls))
        finally:
            fast.terminate()
            fast.wait()
        base50, base99 = pct(times["direct SDK"], 0.5), pct(times["direct SDK"], 0.99)
        print(f"Overhead per call over {args.calls} sequential calls (mock at 0 ms latency, "
              "in its own process; +: over the direct SDK call):")
        print(f"  {'':20} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8}")
        for name, values in times.items():
            p50, p99 = pct(values, 0.5), pct(values, 0.99)
            if name.startswith("own time") or name == "runner own time":
                print(f"  {name:20} {p50:8.3f} {p99:8.3f}   (instrumented: all but the provider "
                      "call)")
                continue
            print(f"  {name:20} {p50:8.3f} {p99:8.3f} {p50 - base50:8.3f} {p99 - base99:8.3f}")
        ours_ab = pct(times["runner"], 0.5) - base50
        ours_own = pct(times["runner own time"], 0.5)
        if "litellm" in times:
            theirs = pct(times["litellm"], 0.5) - base50
            ours = max(ours_ab, ours_own)  # the A/B difference is noisy; take the larger
            print(f"  runner overhead p50 {ours:.3f} ms (A/B {ours_ab:.3f}, instrumented "
                  f"{ours_own:.3f}) / litellm overhead p50 {theirs:.3f} ms = "
                  f"{ours / theirs:.2f} (target <= 0.5)")
        else:
            print("  litellm: not installed (pip install litellm to compare)")
        budget50 = pct(times["runner + budget"], 0.5) - pct(times["runner"], 0.5)
        budget99 = pct(times["runner + budget"], 0.99) - pct(times["runner"], 0.99)
        print(f"  the budget adds {budget50:.3f} ms p50, {budget99:.3f} ms p99 over the same "
              "function without one")
        print("  targets: runner +p50 <= 1 ms, +p99 <= 5 ms (with a budget too); "
              f"mean direct {statistics.mean(times['direct SDK']):.3f} ms")
        ideal = args.batch / args.concurrency * args.latency_ms / 1000
        print(f"Batch: {args.batch} executions, {args.latency_ms:.0f} ms mock latency, "
              f"concurrency {args.concurrency}, ideal {ideal:.2f} s (target <= 1.3x):")
        # Each run gets a fresh mock; each line is one client: two floors without the runner,
        # then the runner through the provider that each floor bounds.
        runs: list[tuple[str, str, Any]] = [
            ("bare aiohttp (floor)", "no runner, no SDK: what any client gets from this mock",
             lambda u: raw_floor(u, args.batch, args.concurrency)),
            ("http provider", "", "bench-http"),
            ("http + budget", "", "bench-http-budget"),
            ("bare OpenAI SDK", "no runner: the SDK's own client, as the provider calls it",
             lambda u: sdk_floor(u, args.batch, args.concurrency)),
            ("openai SDK provider", "", "bench"),
            ("openai SDK + budget", "", "bench-budget")]
        for label, note, what in runs:
            slow, slow_url = start_mock(args.latency_ms)
            try:
                if isinstance(what, str):
                    elapsed, ok = asyncio.run(batch(root, db, slow_url, what, args.batch,
                                                    args.concurrency))
                    note = f"ok {ok}, {elapsed / args.batch * 1000:.3f} ms per execution"
                else:
                    elapsed = asyncio.run(what(slow_url))
            finally:
                slow.terminate()
                slow.wait()
            print(f"  {label:20} {elapsed:6.2f} s  ratio {elapsed / ideal:5.2f}  ({note})")
        if args.faults:
            mock, mock_url = start_mock(0, "--fault-rate", "0.3", "--retry-after", "0.01")
            try:
                elapsed, ok, rows, matching = asyncio.run(faults(root, db, mock_url,
                                                                 args.faults))
            finally:
                mock.terminate()
                mock.wait()
            print(f"Faults: {args.faults} executions, 30% injected faults: {ok / args.faults:.4%} "
                  f"ok (target >= 99.9%), {rows} log rows, {matching} matching an execution "
                  f"with its attempts, {elapsed:.1f} s")


if __name__ == "__main__":
    main()
