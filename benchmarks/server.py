"""Server benchmark (DESIGN §10, issue 12): `aiops serve` next to the LiteLLM proxy, one worker
each, on the same mock provider (`aiops mock-provider`, 0 ms latency, its own process), in the
same run, through the same client (aiohttp):

1. overhead per call, sequential: `POST /api/functions/{ref}/run` and LiteLLM's
   `POST /chat/completions`, each minus the same chat completion sent straight to the mock,
   at p50 and p99 (calls interleaved in a shuffled order each round, so that drift affects
   every side alike). Target: aiops's overhead at most half of LiteLLM's, at p50 and p99.
2. throughput at concurrency 100, requests per second. Target: aiops at least twice LiteLLM.
3. `GET /api/contributor/ai-functions` with 1,000 functions applied, as the client sees it
   (an upper bound of the server's time): a page of 50 and of 200 as an admin, a page of 50 as
   a viewer who may view one function in ten (the verb reads past the 900 others), a search.
   Target: p95 <= 150 ms.

A run answers once its log row is committed (the answer names it): aiops's overhead includes
a PostgreSQL commit, flushed to disk, per run (shared by the concurrent runs of (2), whose rows
go in one group commit), while LiteLLM's proxy, configured without a database, writes nothing.
The run is `bench` by name, as an admin token, without Idempotency-Key or quotas.

aiops's side: a project of 1,000 functions (benchmarks/reconcile.py) and the `bench` function
of benchmarks/runner.py (its messages and output schema: the mock does the same work for
every side), applied to a fresh PostgreSQL schema (AIOPS_DATABASE_URL, else the local default;
dropped after), `aiops serve --workers 1`. LiteLLM's side: its proxy, `--num_workers 1`, from
a config that points an openai-compatible model at the mock, a master key, no database, its
logging off (LITELLM_LOG=ERROR, no callbacks, no spend logs). aiops logs as it is deployed
(info, an access line per request), into a file.

LiteLLM is not a dependency of aiops: install it in a side environment and name its
`litellm` executable with --litellm or AIOPS_BENCH_LITELLM:

    python3 -m venv /tmp/litellm-venv
    /tmp/litellm-venv/bin/pip install 'litellm[proxy]'
    .venv/bin/python benchmarks/server.py --litellm /tmp/litellm-venv/bin/litellm
        [--calls 1000] [--requests 3000] [--gets 300] [--functions 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from measure import AIOPS, compile_bytecode, load_average, mock_provider
from reconcile import PG_DEFAULT, pg_schema_url
from reconcile import make_project as make_functions
from runner import FUNCTION, INPUT, PROVIDERS, SDK_BODY, bench_env, pct

LITELLM_ENV = "AIOPS_BENCH_LITELLM"
LITELLM_KEY = "sk-litellm-bench"
RUN_PATH = "/api/functions/{ref}/run"
LIST_PATH = "/api/contributor/ai-functions"
TEAM_ACCESS = {"view": ["team-a"], "invoke": ["team-a"], "edit": ["team-a"]}
SETUP = f"""LiteLLM's proxy is needed for the comparison, in a side environment (never a
dependency of aiops):

    python3 -m venv /tmp/litellm-venv
    /tmp/litellm-venv/bin/pip install 'litellm[proxy]'

then name its executable: --litellm /tmp/litellm-venv/bin/litellm, or
{LITELLM_ENV}=/tmp/litellm-venv/bin/litellm."""


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"machine: {os.cpu_count()} cores (nproc), {model}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def process(command: list[str], *, env: dict[str, str] | None = None, log: Path | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process (its output to `log`), stopped at the end."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path | None,
               timeout: float = 120.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise SystemExit(f"{proc.args} exited {proc.returncode} before answering:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def make_project(root: Path, n: int, url: str) -> dict[str, str]:
    """`n` functions (nine in ten only for group team-a) and runner.py's `bench`, applied to
    `url`; tokens: {"admin": text, "viewer": text (no group)}."""
    from aiops import commands
    from aiops.store import open_store

    make_functions(root, n)
    for i in range(n):
        if i % 10:
            path = root / "functions" / f"fn-{i:05d}" / "function.yaml"
            data = yaml.safe_load(path.read_text())
            path.write_text(yaml.safe_dump({**data, "access": TEAM_ACCESS}, sort_keys=False))
    providers = yaml.safe_load((root / "providers.yaml").read_text())
    providers["providers"]["bench-openai"] = PROVIDERS["providers"]["bench-openai"]
    (root / "providers.yaml").write_text(yaml.safe_dump(providers))
    (root / "functions" / "bench").mkdir()
    (root / "functions" / "bench" / "function.yaml").write_text(
        yaml.safe_dump(FUNCTION, sort_keys=False))
    store = open_store(url, migrate=True)
    ws = commands.open_workspace(root, database_url=url)
    result = commands.apply(ws, store=store, actor="bench <bench@example.com>")
    assert result.plan.counts()["create"] == n + 1, result.plan.verdict()
    return {role: commands.create_token(ws, name=f"bench-{role}", role=role,
                                        created_by="bench", store=store).text
            for role in ("admin", "viewer")}


# --- the client -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One way of making the call: `send(session)` makes one request and checks its answer."""

    name: str
    send: Callable[[Any], Awaitable[None]]


def post(url: str, body: Any, headers: dict[str, str]) -> Callable[[Any], Awaitable[None]]:
    async def send(session: Any) -> None:
        async with session.post(url, json=body, headers=headers) as response:
            raw = await response.read()
            if response.status != 200:
                raise SystemExit(f"POST {url}: {response.status} {raw[:500]!r}")

    return send


def get(url: str, headers: dict[str, str]) -> Callable[[Any], Awaitable[None]]:
    async def send(session: Any) -> None:
        async with session.get(url, headers=headers) as response:
            raw = await response.read()
            if response.status != 200:
                raise SystemExit(f"GET {url}: {response.status} {raw[:500]!r}")

    return send


async def latencies(sides: list[Side], calls: int, warmup: int) -> dict[str, list[float]]:
    """Sequential calls, interleaved in a shuffled order each round; ms each."""
    import aiohttp

    times: dict[str, list[float]] = {s.name: [] for s in sides}
    order = list(sides)
    shuffle = random.Random(0).shuffle
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for i in range(calls + warmup):
            shuffle(order)
            for side in order:
                start = time.perf_counter()
                await side.send(session)
                if i >= warmup:
                    times[side.name].append((time.perf_counter() - start) * 1000)
    return times


async def throughput(side: Side, requests: int, concurrency: int) -> float:
    """Requests per second with `concurrency` in flight (after a warm-up of as many)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(requests))

        async def worker() -> None:
            for _ in queue:
                await side.send(session)

        await asyncio.gather(*(side.send(session) for _ in range(concurrency)))
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - start)


# --- the servers ----------------------------------------------------------------------------


def litellm_config(path: Path, mock: str) -> None:
    path.write_text(yaml.safe_dump({
        "model_list": [{"model_name": SDK_BODY["model"], "litellm_params": {
            "model": f"openai/{SDK_BODY['model']}", "api_base": f"{mock}/v1",
            "api_key": "sk-bench"}}],
        "litellm_settings": {"num_retries": 0, "request_timeout": 30, "telemetry": False,
                             "turn_off_message_logging": True, "callbacks": [],
                             "success_callback": [], "failure_callback": []},
        "general_settings": {"master_key": LITELLM_KEY, "disable_spend_logs": True,
                             "disable_error_logs": True, "disable_reset_budget": True},
    }, sort_keys=False))


def find_litellm(option: str | None) -> str | None:
    candidate = option or os.environ.get(LITELLM_ENV)
    if not candidate:
        return None
    found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
    return found


def row(name: str, values: list[float], base: list[float] | None) -> str:
    p50, p95, p99 = pct(values, 0.5), pct(values, 0.95), pct(values, 0.99)
    over = f"{p50 - pct(base, 0.5):9.3f} {p99 - pct(base, 0.99):9.3f}" if base else \
        f"{'':9} {'':9}"
    return f"  {name:34} {p50:8.3f} {p95:8.3f} {p99:8.3f} {over}"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--litellm", help=f"LiteLLM's executable (or {LITELLM_ENV})")
    parser.add_argument("--calls", type=int, default=1000, help="sequential calls per side")
    parser.add_argument("--requests", type=int, default=3000,
                        help="requests per side at concurrency 100")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--gets", type=int, default=300, help="list requests per case")
    parser.add_argument("--functions", type=int, default=1000)
    args = parser.parse_args()
    litellm = find_litellm(args.litellm)
    if litellm is None:
        print(SETUP, file=sys.stderr)
        return 2
    compile_bytecode()
    print(machine())
    print("before: " + load_average())
    base = os.environ.get("AIOPS_DATABASE_URL") or PG_DEFAULT
    if not base.startswith("postgres"):
        base = PG_DEFAULT
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp) / "project"
        db, drop = pg_schema_url(base)
        stack.callback(drop)
        tokens = make_project(root, args.functions, db)
        mock = stack.enter_context(mock_provider())
        aiops_port, litellm_port = free_port(), free_port()
        aiops_url = f"http://127.0.0.1:{aiops_port}"
        litellm_url = f"http://127.0.0.1:{litellm_port}"
        env = {**os.environ, **bench_env(mock)}
        log = Path(tmp) / "aiops.log"
        proc = stack.enter_context(process(
            [AIOPS, "serve", "-C", str(root), "--port", str(aiops_port), "--workers", "1",
             "--database-url", db], env=env, log=log))
        wait_ready(aiops_url + "/readyz", proc, log)
        config = Path(tmp) / "litellm.yaml"
        litellm_config(config, mock)
        llog = Path(tmp) / "litellm.log"
        lenv = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "DISABLE_ADMIN_UI": "True"}
        for var in ("DATABASE_URL", "REDIS_URL", "REDIS_HOST"):
            lenv.pop(var, None)
        lproc = stack.enter_context(process(
            [litellm, "--config", str(config), "--host", "127.0.0.1", "--port",
             str(litellm_port), "--num_workers", "1"], env=lenv, log=llog))
        wait_ready(litellm_url + "/health/liveliness", lproc, llog)
        results = asyncio.run(measure(args, mock, aiops_url, litellm_url, tokens))
        print("after: " + load_average())
        return 0 if results else 1


async def measure(args: argparse.Namespace, mock: str, aiops_url: str, litellm_url: str,
                  tokens: dict[str, str]) -> bool:
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    direct = Side("mock, direct", post(f"{mock}/v1/chat/completions", SDK_BODY,
                                       {"Authorization": "Bearer sk-bench"}))
    lite = Side("LiteLLM proxy /chat/completions", post(
        f"{litellm_url}/chat/completions", SDK_BODY, {"Authorization": f"Bearer {LITELLM_KEY}"}))
    ours = Side("aiops /api/functions/bench/run", post(
        aiops_url + RUN_PATH.format(ref="bench"), {"input": INPUT}, admin))
    ok = True

    print(f"\n1. Overhead per call: {args.calls} sequential calls per side, interleaved "
          "(mock at 0 ms, in its own process; +: over the direct call, same client)")
    print(f"  {'':34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'+p50 ms':>9} {'+p99 ms':>9}")
    times = await latencies([direct, lite, ours], args.calls, warmup=100)
    base = times[direct.name]
    for side in (direct, lite, ours):
        print(row(side.name, times[side.name], None if side is direct else base))
    over = {s.name: (pct(times[s.name], 0.5) - pct(base, 0.5),
                     pct(times[s.name], 0.99) - pct(base, 0.99)) for s in (lite, ours)}
    for i, q in enumerate(("p50", "p99")):
        ratio = over[ours.name][i] / over[lite.name][i]
        ok &= ratio <= 0.5
        print(f"  overhead {q}: aiops {over[ours.name][i]:.3f} ms / LiteLLM "
              f"{over[lite.name][i]:.3f} ms = {ratio:.2f} (target <= 0.50: "
              f"{verdict(ratio <= 0.5)})")

    print(f"\n2. Throughput at concurrency {args.concurrency}: {args.requests} requests per side")
    rates = {}
    for side in (direct, lite, ours):
        rates[side.name] = await throughput(side, args.requests, args.concurrency)
        print(f"  {side.name:34} {rates[side.name]:8.0f} requests/s")
    ratio = rates[ours.name] / rates[lite.name]
    ok &= ratio >= 2
    print(f"  aiops / LiteLLM = {ratio:.2f} (target >= 2: {verdict(ratio >= 2)}); "
          f"LiteLLM reaches {rates[lite.name] / rates[direct.name]:.0%} of the mock's direct "
          f"rate, aiops {rates[ours.name] / rates[direct.name]:.0%}")

    print(f"\n3. GET {LIST_PATH} with {args.functions} functions: {args.gets} sequential "
          "requests per case, client-side ms")
    print(f"  {'':34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    cases = [Side("admin, a page of 50", get(aiops_url + LIST_PATH, admin)),
             Side("admin, a page of 200", get(aiops_url + LIST_PATH + "?limit=200", admin)),
             Side("viewer of 1 in 10, a page of 50", get(aiops_url + LIST_PATH, viewer)),
             Side("admin, search=function 99", get(
                 aiops_url + LIST_PATH + "?search=function%2099", admin))]
    got = await latencies(cases, args.gets, warmup=20)
    worst = 0.0
    for case in cases:
        print(row(case.name, got[case.name], None))
        worst = max(worst, pct(got[case.name], 0.95))
    ok &= worst <= 150
    print(f"  worst p95 {worst:.1f} ms (target <= 150 ms: {verdict(worst <= 150)})")
    return ok


if __name__ == "__main__":
    sys.exit(main())
