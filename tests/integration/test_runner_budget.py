"""Daily budgets through the real runner, the mock provider and real SQLite and PostgreSQL:
concurrency does not starve a budget, the estimate bounds what a call costs, a provider that
returns more overspends only by its excess in flight, negative usage is no credit, several
processes share one budget, the sweep releases what a killed process held, and accounting
takes no database round trip per call."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aiops.limits import estimate_cost, estimate_prompt_tokens
from aiops.prompts import compile_prompt
from aiops.providers.mock_server import MockConfig
from aiops.runner import Execution
from aiops.spec import Price
from aiops.store import open_store
from tests import fixtures_providers as runner_project
from tests.fixtures_db import apply_project, budget_leases
from tests.fixtures_providers import open_runner, run_all

PRICE = Price(input_per_mtok=0.15, output_per_mtok=0.6)  # the mock `openai` provider's
PER_CALL = 1.0e-5  # about what a call of `budgeted` costs on the mock (20 in, 12 out tokens)


def budgeted(name: str = "budgeted", **overrides: Any) -> dict[str, Any]:
    return dict(runner_project.CLASSIFY, name=name, fallbacks=[], **overrides)


def estimate(spec: dict[str, Any], max_tokens: int, body: str = "b") -> float:
    """The runner's estimate of one call of `spec` (its inputs render alike)."""
    messages = compile_prompt(spec["prompt"], ["subject", "body"]).render(
        {"subject": "s10", "body": body})
    schema = spec["output_schema"]
    extra = 0 if schema.get("type") == "string" else len(json.dumps(schema))
    return estimate_cost(PRICE, estimate_prompt_tokens(messages, extra), max_tokens)


def deploy(tmp_path: Path, url: str, *specs: dict[str, Any]) -> tuple[Path, Any]:
    root = runner_project.write(tmp_path / "proj", *specs)
    store = open_store(url, migrate=True)
    apply_project(root, url=url, store=store, actor="ci <ci@example.com>")
    return root, store


def inputs(n: int, body: str = "b") -> list[dict[str, str]]:
    return [{"subject": f"s{i}", "body": body} for i in range(n)]


def run_batch(root: Path, store: Any, server_url: str, name: str, items: list[Any],
              concurrency: int) -> list[Any]:
    runner = open_runner(root, env=runner_project.env_for(server_url), store=store, actor="t")

    async def go() -> list[Any]:
        try:
            return await run_all(runner, name, items, concurrency)
        finally:
            await runner.aclose()

    return asyncio.run(go())


def usage(store: Any, name: str) -> dict[str, Any]:
    found = store.usage(store.resolve(name).function_id, datetime.now(UTC).date())
    assert found is not None
    return dict(found)


def outcomes(results: list[Any]) -> list[str]:
    return [type(r.error).__name__ if isinstance(r, Execution) and r.error else
            "ok" if isinstance(r, Execution) else type(r).__name__ for r in results]


def test_concurrency_does_not_starve_a_budget(tmp_path: Path, db_url: str,
                                              mock_provider_factory: Any) -> None:
    """Estimates far above the real cost (max_tokens 100, about 12 used) held by calls in
    flight used to refuse most of a batch at concurrency 16 (9 ok of 100 on $1, against 48 at
    concurrency 1). A call now waits for the calls in flight to settle, and is refused only
    when what was spent leaves no room for it: concurrency 16 uses the budget as 1 does."""
    server = mock_provider_factory(MockConfig(latency_ms=5))
    budget = 60 * PER_CALL
    specs = [budgeted(f"budgeted-{c}", limits={"daily_budget_usd": budget}) for c in (1, 16)]
    root, store = deploy(tmp_path, db_url, *specs)
    one_call = estimate(specs[0], 100)
    assert one_call > 5 * PER_CALL  # the estimate bounds the call, far above what it costs
    ok = {}
    for c in (1, 16):
        results = run_batch(root, store, server.url, f"budgeted-{c}", inputs(100), c)
        ok[c] = outcomes(results).count("ok")
        assert set(outcomes(results)) == {"ok", "BudgetExceeded"}
        u = usage(store, f"budgeted-{c}")
        assert budget - one_call <= u["usd_spent"] <= budget
        assert (u["calls_reserved"], u["usd_reserved"], u["calls_used"]) == (0, 0, ok[c])
    assert ok[16] >= ok[1] - 2, ok
    assert budget_leases(store) == []


def test_the_estimate_bounds_what_a_call_can_cost(tmp_path: Path, db_url: str,
                                                  mock_provider_factory: Any) -> None:
    """A function without max_tokens was estimated at 1024 output tokens and sent none: the
    provider answered 2,000 and a $1 budget ended at $1.80. With a USD budget the runner sends
    max_tokens (1024 when the function sets none), so the estimate bounds each call and the
    day ends within its budget."""
    server = mock_provider_factory(MockConfig(latency_ms=5, responses=[
        {"content": "word " * 1600}]))  # ~2,000 tokens, more than 1024
    spec = budgeted(configuration={"temperature": 0}, output_schema={"type": "string"})
    one_call = estimate(spec, 1024)
    budget = 10.5 * one_call
    spec["limits"] = {"daily_budget_usd": budget}
    root, store = deploy(tmp_path, db_url, spec)
    results = run_batch(root, store, server.url, "budgeted", inputs(40), 8)
    # Cut at what was sent: not a success (`truncated`), billed and charged all the same.
    ran = [r for r in results if r.attempts]
    assert len(ran) == 10 and outcomes(results).count("BudgetExceeded") == 30
    assert all(r.attempts[0].kind == "truncated" and r.output_tokens == 1024 for r in ran)
    u = usage(store, "budgeted")
    assert budget - one_call <= u["usd_spent"] <= budget


def test_a_provider_that_ignores_max_tokens_overspends_only_its_excess_in_flight(
        tmp_path: Path, db_url: str, mock_provider_factory: Any) -> None:
    """The bound that docs/providers.md states when the estimate cannot bound a call (a
    backend that answers more than max_tokens): the day exceeds its budget by at most what
    the calls in flight when it ran out cost beyond their estimates, here at most
    concurrency × (real cost - estimate)."""
    server = mock_provider_factory(MockConfig(latency_ms=5, responses=[
        {"content": "an answer", "usage": {"output_tokens": 3 * 1024}}]))
    spec = budgeted(configuration={"temperature": 0}, output_schema={"type": "string"})
    one_call = estimate(spec, 1024)
    budget, concurrency = 20 * one_call, 8
    spec["limits"] = {"daily_budget_usd": budget}
    root, store = deploy(tmp_path, db_url, spec)
    results = run_batch(root, store, server.url, "budgeted", inputs(60), concurrency)
    real = max(r.cost_usd for r in results if r.ok)
    assert real > 2 * one_call  # the estimate does not bound these calls
    spent = usage(store, "budgeted")["usd_spent"]
    assert budget < spent <= budget + concurrency * (real - one_call)


def test_negative_usage_is_an_error_not_a_credit(tmp_path: Path, db_url: str,
                                                 mock_provider_factory: Any) -> None:
    """A provider reporting negative tokens recorded a cost of -$1,000,000 and lifted the
    budget for the day. It is now the call's error (`bad_usage`), never a credit: the call is
    charged its estimate (what its usage cannot tell), and the budget holds for the calls
    after it."""
    server = mock_provider_factory(MockConfig(latency_ms=2, responses=[
        {"match": {"contains": "NEGATIVE"}, "output": {"queue": "billing", "priority": 1},
         "usage": {"input_tokens": -10, "output_tokens": -1_000_000_000}}]))
    budget = 30 * PER_CALL
    spec = budgeted(limits={"daily_budget_usd": budget})
    root, store = deploy(tmp_path, db_url, spec)
    bad = run_batch(root, store, server.url, "budgeted", inputs(3, "NEGATIVE"), 3)
    for r in bad:
        assert r.error is not None and type(r.error).__name__ == "ProviderError"
        assert "(input_tokens -10 is negative; output_tokens -1000000000 is negative)" in \
            r.error.message
        assert r.attempts[0].kind == "bad_usage"
        assert r.cost_usd == pytest.approx(estimate(spec, 100, "NEGATIVE"))
    assert usage(store, "budgeted")["usd_spent"] == pytest.approx(
        3 * estimate(spec, 100, "NEGATIVE"))
    good = run_batch(root, store, server.url, "budgeted", inputs(100), 8)
    assert "BudgetExceeded" in outcomes(good)
    assert usage(store, "budgeted")["usd_spent"] <= budget
    assert all((row.cost_usd or 0) >= 0 for row in store.recent_logs("budgeted", limit=200))


def test_budget_accounting_takes_no_database_round_trip_per_call(
        tmp_path: Path, db_url: str, mock_provider: Any) -> None:
    """Each call used to run two transactions on one counter row (reserve, settle): +3-4 ms
    a call, and a 10,000-call batch 5-7× slower. A process now leases a slice and settles in
    bulk: a batch of 300 calls touches the budget tables a handful of times."""
    from sqlalchemy import event

    root, store = deploy(tmp_path, db_url, budgeted(limits={"daily_budget_usd": 100.0,
                                                            "daily_calls": 100_000}))
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "usage_counters" in statement or "budget_leases" in statement:
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        results = run_batch(root, store, mock_provider.url, "budgeted", inputs(300), 32)
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
    assert outcomes(results).count("ok") == 300
    assert len(seen) <= 60, len(seen)  # one lease, a settlement or two, the return: ~8 each
    u = usage(store, "budgeted")
    assert (u["calls_used"], u["calls_reserved"], u["usd_reserved"]) == (300, 0, 0)
    assert u["usd_spent"] == pytest.approx(sum(r.cost_usd for r in results))


def test_daily_calls_stay_exact_across_lease_holders(tmp_path: Path, db_url: str,
                                                     mock_provider: Any) -> None:
    """Calls are leased like dollars: four runners (four leases) racing on a quota of 37
    make exactly 37 calls."""
    root, store = deploy(tmp_path, db_url, budgeted(limits={"daily_calls": 37}))
    runners = [open_runner(root, env=runner_project.env_for(mock_provider.url), store=store,
                           actor="t") for _ in range(4)]

    async def go() -> list[Any]:
        try:
            batches = await asyncio.gather(*(run_all(r, "budgeted", inputs(20), 8)
                                             for r in runners))
        finally:
            for r in runners:
                await r.aclose()
        return [x for batch in batches for x in batch]

    results = outcomes(asyncio.run(go()))
    assert results.count("ok") == 37 and results.count("BudgetExceeded") == 43
    u = usage(store, "budgeted")
    assert (u["calls_used"], u["calls_reserved"]) == (37, 0)


# --- several processes ---------------------------------------------------------------------

WORKER = """
import asyncio, json, sys
from pathlib import Path
from aiops.runner import Runner
from aiops.workspace import open_workspace
from aiops.store import open_store
root, url, env, n, concurrency, lease_s = (Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]),
                                           int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
runner = Runner(store=open_store(url), providers=open_workspace(root).providers, env=env, actor="worker",
                budget_lease_s=lease_s)
def started(index, result):
    if index == 0:
        print("started", flush=True)
async def go():
    results = []
    try:
        await runner.run_many("budgeted", [{"subject": f"s{i}", "body": "b"} for i in range(n)],
                              concurrency=concurrency,
                              on_result=lambda i, r: (started(i, r), results.append(r)))
    finally:
        await runner.aclose()
    return results
results = asyncio.run(go())
print(json.dumps([type(r.error).__name__ if r.error else "ok" for r in results]))
"""


def start_worker(root: Path, url: str, server_url: str, n: int, concurrency: int,
                 lease_s: float = 60.0) -> subprocess.Popen[str]:
    env = {**runner_project.env_for(server_url), "PATH": os.environ.get("PATH", "/usr/bin")}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(root), url, json.dumps(env),
                             str(n), str(concurrency), str(lease_s)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_eight_processes_share_one_budget(tmp_path: Path, db_url: str,
                                          mock_provider_factory: Any) -> None:
    """8 processes, each with more demand than the whole budget can serve, race on one
    function: together they spend no more than the budget (the mock honours max_tokens, so
    each estimate bounds its call) and at least 80% of it, and leave nothing reserved."""
    server = mock_provider_factory(MockConfig(latency_ms=5))
    budget = 150 * PER_CALL  # about 150 calls, for 8 × 40 = 320 wanted
    root, store = deploy(tmp_path, db_url, budgeted(limits={"daily_budget_usd": budget}))
    procs = [start_worker(root, db_url, server.url, 40, 8) for _ in range(8)]
    results: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results += json.loads(out.strip().splitlines()[-1])
    assert set(results) == {"ok", "BudgetExceeded"}, results
    u = usage(store, "budgeted")
    assert 0.8 * budget <= u["usd_spent"] <= budget, (u, budget)
    assert (u["calls_reserved"], u["usd_reserved"]) == (0, 0)
    assert u["calls_used"] == results.count("ok")
    assert budget_leases(store) == []
    rows = store.recent_logs("budgeted", limit=1000)
    assert len(rows) == len(results) == 320
    assert sum(r.cost_usd or 0 for r in rows) == pytest.approx(u["usd_spent"])


def test_the_sweep_releases_what_a_killed_process_held(tmp_path: Path, db_url: str,
                                                       mock_provider_factory: Any) -> None:
    """SIGKILL leaves a process no chance to give its lease back (today: 20 calls and $0.0017
    reserved for good). Once the lease expires, the next runner to lease that function's
    budget sweeps it, and what it spent since is all that stays counted."""
    server = mock_provider_factory(MockConfig(latency_ms=100))
    budget = 1000 * PER_CALL
    root, store = deploy(tmp_path, db_url, budgeted(limits={"daily_budget_usd": budget,
                                                            "daily_calls": 1000}))
    proc = start_worker(root, db_url, server.url, 500, 4, lease_s=1.0)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started", proc.stderr
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    held = usage(store, "budgeted")
    assert held["calls_reserved"] > 0 and held["usd_reserved"] > 0
    (dead,) = budget_leases(store)
    time.sleep(1.5)  # past the dead lease's expiry (the worker's lease_s: 1 s)
    results = run_batch(root, store, server.url, "budgeted", inputs(1), 1)
    assert outcomes(results) == ["ok"]
    after = usage(store, "budgeted")
    assert (after["calls_reserved"], after["usd_reserved"]) == (0, 0)
    assert budget_leases(store) == []
    assert after["calls_used"] == held["calls_used"] + 1
    assert dead.holder.endswith(f":{proc.pid}")
