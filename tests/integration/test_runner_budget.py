"""Several worker processes racing on one function with a small daily USD budget never
spend more than the budget plus one call's estimate (reservations are made in PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aiops.limits import estimate_cost, estimate_prompt_tokens
from aiops.providers.mock_server import MockConfig
from aiops.reconcile import apply_project
from aiops.render_template import compile_prompt
from aiops.spec import Price
from tests import fixtures_providers as runner_project

WORKER = """
import asyncio, json, sys
from pathlib import Path
from aiops.runner import open_runner
root, url, env = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
runner = open_runner(root, env=env, url=url, actor="worker")
async def go():
    try:
        return await runner.run_many("budgeted", [{"subject": f"s{i}", "body": "b"}
                                                  for i in range(40)], concurrency=10)
    finally:
        await runner.aclose()
results = asyncio.run(go())
print(json.dumps([type(r.error).__name__ if r.error else "ok" for r in results]))
"""
BUDGET = 0.0005


@pytest.mark.postgres
def test_workers_never_overspend_a_daily_budget(tmp_path: Path, pg_schema_url: str,
                                                mock_provider_factory: Any) -> None:
    from aiops.store import open_store

    server = mock_provider_factory(MockConfig(latency_ms=5))
    spec = dict(runner_project.CLASSIFY, name="budgeted", fallbacks=[],
                limits={"daily_budget_usd": BUDGET})
    root = runner_project.write(tmp_path / "proj", spec)
    store = open_store(pg_schema_url, migrate=True)
    apply_project(root, url=pg_schema_url, store=store, actor="ci <ci@example.com>")
    env = {**runner_project.env_for(server.url), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(root), pg_schema_url,
                               json.dumps(env)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outcomes: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes += json.loads(out.strip().splitlines()[-1])
    assert outcomes.count("ok") >= 5 and outcomes.count("BudgetExceeded") >= 20, outcomes
    assert set(outcomes) <= {"ok", "BudgetExceeded"}

    dv = store.resolve("budgeted")
    messages = compile_prompt(spec["prompt"], ["subject", "body"]).render(
        {"subject": "s10", "body": "b"})
    one_call = estimate_cost(Price(input_per_mtok=0.15, output_per_mtok=0.6),
                             estimate_prompt_tokens(messages), 100)
    usage = store.usage(dv.function_id, datetime.now(UTC).date())
    assert usage is not None
    assert usage["usd_spent"] <= BUDGET + one_call
    assert usage["usd_reserved"] == pytest.approx(0, abs=1e-12)
    assert usage["calls_reserved"] == 0 and usage["calls_used"] == outcomes.count("ok")
    rows = store.recent_logs("budgeted", limit=1000)
    assert len(rows) == len(outcomes) == 160
    assert sum(r.cost_usd or 0 for r in rows) == pytest.approx(usage["usd_spent"])
