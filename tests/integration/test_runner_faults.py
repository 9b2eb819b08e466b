"""1,000 executions against a mock injecting 30% faults end >= 99.9% successful through
retries, repairs and fallbacks; the database holds exactly one log row per execution."""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from aiops.providers.mock_server import MockConfig
from aiops.runner import Execution
from aiops.store import Store
from tests import fixtures_providers as runner_project
from tests.fixtures_db import apply_project
from tests.fixtures_providers import open_runner, run_all


def test_thousand_executions_with_thirty_percent_faults(tmp_path: Path, db_url: str,
                                                        store: Store,
                                                        mock_provider_factory: Any) -> None:
    server = mock_provider_factory(MockConfig(fault_rate=0.3, seed=7, retry_after_s=0.005,
                                              timeout_fault_s=1.0))
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY)
    apply_project(root, url=db_url, store=store, actor="ci <ci@example.com>")
    runner = open_runner(root, env=runner_project.env_for(server.url), store=store, actor="ci")
    inputs = [{"subject": f"ticket {i}", "body": f"body {i}"} for i in range(1000)]

    async def go() -> list[Any]:
        try:
            return await run_all(runner, "classify", inputs, 64)
        finally:
            await runner.aclose()

    results = asyncio.run(go())
    assert all(isinstance(r, Execution) for r in results)
    ok = sum(r.ok for r in results)
    assert ok >= 999, Counter(type(r.error).__name__ for r in results if not r.ok)

    # The faults really happened, of every kind, and were survived.
    faults = {k: v for k, v in server.app.stats.items() if k.startswith("fault:")}
    assert len(faults) == 8 and sum(faults.values()) > 250
    attempts = Counter(a.status for r in results for a in r.attempts)
    assert attempts["error"] > 100 and attempts["invalid"] > 30
    assert any(r.attempts[-1].provider != "openai" for r in results if r.ok)  # fallbacks ran

    rows = store.recent_logs("classify", limit=5000)
    assert len(rows) == 1000
    by_id = {row.id: row for row in rows}
    assert set(by_id) == {r.log_id for r in results}
    for r in results:
        row = by_id[r.log_id]
        assert row.status == ("ok" if r.ok else "error")
        assert len(row.metadata["attempts"]) == len(r.attempts) >= 1
        assert row.metadata["prompt_hash"] and row.input_tokens == r.input_tokens


def test_a_throttled_primary_with_faults_spills_over_in_seconds(tmp_path: Path, db_url: str,
                                                                store: Store,
                                                                mock_provider_factory: Any) -> None:
    """Issue 10: the primary has Groq's free-tier limits (rpm 30, tpm 6000), the fallbacks no
    tight ones, and 30% of requests fail. The calls that the primary has no room for go to
    the fallbacks at once (`on_limit: fallback`, the default): >= 99% succeed within
    seconds, each with one log row. They used to wait for the primary's window and fail
    "still reached after waiting 60.0s"."""
    server = mock_provider_factory(MockConfig(fault_rate=0.3, seed=11, retry_after_s=0.005,
                                              timeout_fault_s=1.0))
    throttled = dict(runner_project.CLASSIFY, name="throttled", provider="groq",
                     model="llama-3.1-8b-instant",
                     fallbacks=[{"provider": "openai", "model": "gpt-4o-mini"},
                                {"provider": "internal", "model": "house-model"}])
    root = runner_project.write(tmp_path / "proj", throttled)
    providers = copy.deepcopy(runner_project.PROVIDERS)
    providers["providers"]["groq"]["limits"] = {"rpm": 30, "tpm": 6000}
    (root / "providers.yaml").write_text(yaml.safe_dump(providers), encoding="utf-8")
    apply_project(root, url=db_url, store=store, actor="ci <ci@example.com>")
    runner = open_runner(root, env=runner_project.env_for(server.url), store=store, actor="ci")
    inputs = [{"subject": f"ticket {i}", "body": f"body {i}"} for i in range(150)]

    async def go() -> list[Any]:
        try:
            async with asyncio.timeout(30):  # minutes, before
                return await run_all(runner, "throttled", inputs, 32)
        finally:
            await runner.aclose()

    start = time.perf_counter()
    results = asyncio.run(go())
    elapsed = time.perf_counter() - start
    ok = sum(r.ok for r in results)
    assert ok >= 149, Counter(r.error.message for r in results if not r.ok)
    assert elapsed < 15, elapsed
    answered = Counter(r.provider for r in results if r.ok)
    assert 0 < answered["groq"] <= 30 and answered["openai"] + answered["internal"] >= 100
    passed_over = sum(1 for r in results for a in r.attempts if a.kind == "rate_limit"
                      and a.status == "skipped")
    assert passed_over >= 100
    rows = store.recent_logs("throttled", limit=1000)
    assert len(rows) == 150 and {row.id for row in rows} == {r.log_id for r in results}
