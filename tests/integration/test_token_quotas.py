"""An API caller's quotas (`aiops.commands.quotas`) through the real runner, the mock provider
(OpenAI's SDK) and real SQLite and PostgreSQL: daily calls and USD reserved and settled
exactly by runners racing in several threads, the rpm window of the `limits` library (in
memory, and shared through Redis), a token's ledger kept apart from its function's, and
`aiops token list` showing the quotas and today's use."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from aiops import commands
from aiops.access import Caller
from aiops.budgets import TOKENS, ZERO, Amount, LeaseSync
from aiops.cli import cli
from aiops.commands.monitoring import quota_use
from aiops.commands.quotas import admit
from aiops.errors import QuotaExceeded
from aiops.providers.mock_server import MockConfig
from aiops.runner import Execution, Runner
from aiops.store import Store, open_store
from aiops.store.tables import QL, QU
from tests import fixtures_providers as runner_project
from tests.fixtures_db import apply_project
from tests.fixtures_providers import open_runner

REDIS_ENV = "AIOPS_TEST_REDIS_URL"


def budgeted(**overrides: Any) -> dict[str, Any]:
    return dict(runner_project.CLASSIFY, name="budgeted", fallbacks=[], **overrides)


def deploy(tmp_path: Path, url: str, *specs: dict[str, Any]) -> tuple[Path, Store]:
    root = runner_project.write(tmp_path / "proj", *(specs or (budgeted(),)))
    store = open_store(url, migrate=True)
    apply_project(root, url=url, store=store, actor="ci <ci@example.com>")
    return root, store


def caller_for(root: Path, url: str, store: Store, name: str = "app", **quotas: Any) -> Caller:
    """A token with `quotas` (rpm, daily_calls, daily_usd), authenticated as the server does."""
    ws = commands.open_workspace(root, database_url=url)
    made = commands.create_token(ws, name=name, role="invoker", created_by="Op", store=store,
                                 **quotas)
    return commands.authenticate(store, made.text)


def item(i: int) -> dict[str, str]:
    return {"subject": f"s{i}", "body": "b"}


async def run_as(runner: Runner, caller: Caller, value: Any,
                 target: str = "budgeted") -> Execution | QuotaExceeded:
    """What an API route does around a run: admission, then the run under the claim."""
    try:
        quota = await admit(runner, caller)
    except QuotaExceeded as exc:
        return exc
    return await runner.run(target, value, quota=quota)


def token_usage(store: Store, caller: Caller) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(select(QU).where(QU.c.token_id == uuid.UUID(caller.token_id),
                                            QU.c.day == datetime.now(UTC).date())).one()
        leases = conn.execute(select(QL)).all()
    return {**row._mapping, "leases": len(leases)}


def outcome(result: Any) -> str:
    if isinstance(result, Execution):
        return "ok" if result.ok else f"{type(result.error).__name__}:" \
            f"{getattr(result.error, 'limit', '')}"
    return f"{type(result).__name__}:{getattr(result, 'limit', '')}"


def test_fifty_parallel_calls_race_a_daily_calls_quota_of_20(
        tmp_path: Path, db_url: str, mock_provider_factory: Any) -> None:
    """Five workers (a runner each, its own event loop in its own thread, its own database
    connections), ten calls in flight each, race one token's quota of 20 calls a day:
    exactly 20 reach the provider, the 30 others are refused with the quota's name and the
    time until 00:00 UTC, and nothing stays reserved."""
    server = mock_provider_factory(MockConfig(latency_ms=20))
    root, store = deploy(tmp_path, db_url)
    caller = caller_for(root, db_url, store, daily_calls=20)
    env = runner_project.env_for(server.url)
    before = server.app.stats["requests"]
    results: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(5)

    def worker(first: int) -> None:
        runner = open_runner(root, url=db_url, env=env, actor=caller.actor)

        async def go() -> list[Any]:
            try:
                return await asyncio.gather(*(run_as(runner, caller, item(first + i))
                                              for i in range(10)))
            finally:
                await runner.aclose()

        start.wait()
        mine = asyncio.run(go())
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, args=(10 * w,)) for w in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = [outcome(r) for r in results]
    assert outcomes.count("ok") == 20, outcomes
    assert outcomes.count("QuotaExceeded:daily_calls") == 30, outcomes
    assert server.app.stats["requests"] - before == 20
    refused = next(r.error for r in results if not r.ok)
    assert refused.message == ("token app: today's call quota is spent (daily_calls 20: 20 "
                               "made); it resets at 00:00 UTC")
    midnight = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC).timestamp() \
        + 86400
    assert abs(datetime.now(UTC).timestamp() + refused.retry_after_s - midnight) < 60
    u = token_usage(store, caller)
    assert (u["calls_used"], u["calls_reserved"], u["usd_reserved"], u["leases"]) == (20, 0, 0, 0)
    ok = [r for r in results if r.ok]
    assert u["usd_spent"] == pytest.approx(sum(r.cost_usd for r in ok))
    # Every execution has its log row, its caller's name on it.
    rows = store.recent_logs("budgeted", limit=100)
    assert len(rows) == 50 and {r.actor for r in rows} == {"token:app"}
    assert sum(r.status == "ok" for r in rows) == 20


def test_a_daily_usd_quota_bounds_what_a_token_spends(tmp_path: Path, db_url: str,
                                                      mock_provider: Any) -> None:
    """USD is reserved at each call's estimate (max_tokens is sent, so the estimate bounds the
    call) and settled at its real cost: the token spends no more than its quota, and close
    to it."""
    root, store = deploy(tmp_path, db_url)
    runner = open_runner(root, url=db_url, env=runner_project.env_for(mock_provider.url),
                         actor="t")
    probe = asyncio.run(_one(runner, None))
    assert probe.ok and probe.cost_usd > 0
    quota = 12.5 * probe.cost_usd
    caller = caller_for(root, db_url, store, daily_usd=quota)
    runner = open_runner(root, url=db_url, env=runner_project.env_for(mock_provider.url),
                         actor="t")

    async def go() -> list[Any]:
        try:
            return await asyncio.gather(*(run_as(runner, caller, item(i)) for i in range(40)))
        finally:
            await runner.aclose()

    outcomes = [outcome(r) for r in asyncio.run(go())]
    assert set(outcomes) == {"ok", "QuotaExceeded:daily_usd"}, outcomes
    u = token_usage(store, caller)
    assert quota - 10 * probe.cost_usd <= u["usd_spent"] <= quota
    assert u["calls_used"] == outcomes.count("ok")
    assert (u["calls_reserved"], u["usd_reserved"]) == (0, 0)


async def _one(runner: Runner, caller: Caller | None) -> Any:
    try:
        quota = await admit(runner, caller)
        return await runner.run("budgeted", item(0), quota=quota)
    finally:
        await runner.aclose()


def test_a_token_quota_and_a_function_budget_count_a_call_once_each(
        tmp_path: Path, db_url: str, mock_provider: Any) -> None:
    """A call is admitted against the caller's quota and the function's budget, or neither:
    when the function's budget refuses, the token's quota is not charged for a call that was
    never made, and the other way round."""
    root, store = deploy(tmp_path, db_url, budgeted(limits={"daily_calls": 3}),
                         dict(budgeted(limits={"daily_calls": 10}), name="roomy"))
    big = caller_for(root, db_url, store, name="big", daily_calls=100)
    small = caller_for(root, db_url, store, name="small", daily_calls=2)
    runner = open_runner(root, url=db_url, env=runner_project.env_for(mock_provider.url),
                         actor="t")

    async def go() -> tuple[list[str], list[str]]:
        try:
            first = [outcome(await run_as(runner, big, item(i))) for i in range(5)]
            second = [outcome(await run_as(runner, small, item(i), "roomy"))
                      for i in range(4)]
            return first, second
        finally:
            await runner.aclose()

    first, second = asyncio.run(go())
    assert first == ["ok"] * 3 + ["BudgetExceeded:daily_calls"] * 2
    assert second == ["ok"] * 2 + ["QuotaExceeded:daily_calls"] * 2
    assert token_usage(store, big)["calls_used"] == 3
    assert token_usage(store, small)["calls_used"] == 2
    today = datetime.now(UTC).date()
    for name, made in (("budgeted", 3), ("roomy", 2)):
        usage = store.usage(store.resolve(name).function_id, today)
        assert usage is not None and (usage["calls_used"], usage["calls_reserved"]) == (made, 0)


def test_rpm_is_a_sliding_window_of_the_limits_library(tmp_path: Path, db_url: str,
                                                       mock_provider: Any) -> None:
    """A token's rpm counts its runs in the runner's RateLimiter: the fourth run in a minute
    of a token with rpm 3 is refused before it runs, saying when the window has room; another
    token has its own window."""
    root, store = deploy(tmp_path, db_url)
    limited = caller_for(root, db_url, store, name="limited", rpm=3)
    other = caller_for(root, db_url, store, name="other", rpm=3)
    runner = open_runner(root, url=db_url, env=runner_project.env_for(mock_provider.url),
                         actor="t")

    async def go() -> list[Any]:
        try:
            return [await run_as(runner, c, item(i))
                    for i, c in enumerate([limited] * 4 + [other])]
        finally:
            await runner.aclose()

    results = asyncio.run(go())
    assert [outcome(r) for r in results] == ["ok"] * 3 + ["QuotaExceeded:rpm", "ok"]
    refused = results[3]
    assert "token limited: its rpm quota (3 runs a minute) has no room" in refused.message
    assert 0 < refused.retry_after_s <= 60
    assert len(store.recent_logs("budgeted", limit=10)) == 4  # the refused run never started


@pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"{REDIS_ENV} is not set (CI sets it)")
def test_rpm_is_shared_by_workers_through_redis(tmp_path: Path, mock_provider: Any) -> None:
    """Two workers (two runners, two RateLimiters) on one Redis share a token's rpm: 3 runs
    a minute in all, not 3 each."""
    import redis

    url = os.environ[REDIS_ENV]
    redis.Redis.from_url(url).flushdb()
    db = f"sqlite:///{tmp_path / 'aiops.db'}"
    root, store = deploy(tmp_path, db)
    caller = caller_for(root, db, store, rpm=3)
    env = {**runner_project.env_for(mock_provider.url), "AIOPS_RATE_LIMIT_URL": url}

    async def go() -> list[str]:
        first, second = (open_runner(root, url=db, env=env, actor="t") for _ in range(2))
        try:
            return [outcome(await run_as(r, caller, item(i)))
                    for i, r in enumerate([first, second, first, second])]
        finally:
            await first.aclose()
            await second.aclose()

    assert asyncio.run(go()) == ["ok"] * 3 + ["QuotaExceeded:rpm"]


def test_token_list_shows_the_quotas_and_todays_use(tmp_path: Path, db_url: str,
                                                    mock_provider: Any) -> None:
    root, store = deploy(tmp_path, db_url)
    caller = caller_for(root, db_url, store, rpm=60, daily_calls=20, daily_usd=2.5)
    caller_for(root, db_url, store, name="idle")
    runner = open_runner(root, url=db_url, env=runner_project.env_for(mock_provider.url),
                         actor="t")

    async def go() -> list[Any]:
        try:
            return [await run_as(runner, caller, item(i)) for i in range(3)]
        finally:
            await runner.aclose()

    spent = sum(r.cost_usd for r in asyncio.run(go()))
    env = {"AIOPS_DATABASE_URL": db_url}
    result = CliRunner(env=env).invoke(cli, ["token", "list", "-C", str(root)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "QUOTAS" in result.stdout and "TODAY" in result.stdout
    assert "60 rpm, 20 calls/day, $2.5/day" in lines["app"]
    assert f"3 calls, ${spent:.4f}" in lines["app"]
    assert lines["idle"].split()[-4:] == ["-", "0", "calls,", "$0.0000"]
    listed = json.loads(CliRunner(env=env).invoke(
        cli, ["token", "list", "-C", str(root), "--json"]).stdout)["tokens"]
    app = next(t for t in listed if t["name"] == "app")
    assert app["today"]["calls"] == 3 and app["today"]["usd"] == pytest.approx(spent)
    # The monitoring page's quota use reads the same counters.
    used = quota_use(store, caller)
    assert used is not None
    assert (used.calls_used, used.calls_share) == (3, 0.15)
    assert used.usd_spent == pytest.approx(spent)
    assert used.usd_share == pytest.approx(round(spent / 2.5, 6))
    idle = commands.authenticate(store, commands.create_token(
        commands.open_workspace(root, database_url=db_url), name="free", role="viewer",
        created_by="Op", store=store).text)
    assert quota_use(store, idle) is None and quota_use(store, None) is None


def test_what_a_killed_worker_reserved_of_a_quota_is_swept(tmp_path: Path, db_url: str,
                                                           mock_provider: Any) -> None:
    """A worker killed mid-call cannot give its lease of a token's quota back: once the lease
    expires, the next run of that token, by any worker, releases it (the function's ledger
    is not touched)."""
    root, store = deploy(tmp_path, db_url)
    caller = caller_for(root, db_url, store, daily_calls=10)
    today = datetime.now(UTC).date()
    store.sync_budget_lease(LeaseSync(lease_id=str(uuid.uuid4()), holder="dead:1",
                                      owner_id=caller.token_id, day=today, settle=ZERO,
                                      lease_s=-1, ledger=TOKENS.name),
                            lambda pool: Amount(calls=10))
    assert token_usage(store, caller)["calls_reserved"] == 10
    assert store.usage(caller.token_id, today) is None  # not a function's counter
    runner = open_runner(root, url=db_url, env=runner_project.env_for(mock_provider.url),
                         actor="t")

    async def go() -> list[str]:
        try:
            return [outcome(await run_as(runner, caller, item(i))) for i in range(3)]
        finally:
            await runner.aclose()

    assert asyncio.run(go()) == ["ok"] * 3
    u = token_usage(store, caller)
    assert (u["calls_used"], u["calls_reserved"], u["leases"]) == (3, 0, 0)


def test_migration_0007_adds_the_quota_tables_and_is_undone(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from aiops.store import tables
    from aiops.store.engine import SCHEMA_HEAD, migrate

    migrate(store.engine, "0006")
    names = set(sa_inspect(store.engine).get_table_names())
    assert "api_tokens" in names and not {"token_usage", "token_leases"} & names
    migrate(store.engine, "0007")
    assert {"token_usage", "token_leases"} <= set(sa_inspect(store.engine).get_table_names())
    migrate(store.engine, SCHEMA_HEAD)  # the later revisions too: then the tables are the code's
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []
