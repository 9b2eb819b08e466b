"""Stats benchmark (DESIGN §10, issue 13): stats over 1,000,000 executions on PostgreSQL.

Loads executions into a fresh PostgreSQL schema through the real log path
(`Store.insert_logs`: groups of 1,000 rows in time order, as the runner's batches write them,
each with its rollups in the same transaction) across `--functions` functions. Each stage
adds executions over the same last 24 hours, so that at each checkpoint (100,000 ...
1,000,000 executions) the same window is denser. At each it times, median of `--repeat`
runs:

- `one`: `aiops stats NAME --since 24h` as the verb computes it (commands.stats: rollups,
  percentiles from the buckets, budget share), for one function;
- `all`: the same for every function;
- beside each, the naive query over the raw log rows of the same run (count, errors, tokens,
  cost and percentile_disc of the latencies, over the same 24 hours).

Target: `one` and `all` <= 100 ms, and flat as executions grow (the rollups' rows are bounded
by minutes x keys, not by executions), while the naive query grows with the rows.
It also prints the load rate (executions per second through the log path, rollups included).

    .venv/bin/python benchmarks/stats.py [--executions 1000000] [--checkpoints 100000,...]
        [--functions 20] [--repeat 7] [--database postgresql://USER@HOST/DB]

The database URL defaults to AIOPS_DATABASE_URL, else the local test server; a schema is
created for the run and dropped after.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from measure import load_average, pg_schema
from sqlalchemy import text

from aiops import commands
from aiops.records import LogRow
from aiops.store import Store, open_store
from aiops.workspace import open_workspace

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROVIDERS = {"providers": {"mock": {"type": "openai", "api_key_env": "MOCK_API_KEY", "models": {
    "mock-small": {"input_per_mtok": 0.1, "output_per_mtok": 0.2}}}}}
GROUP = 1000  # rows per log write, as aiops.batch groups them


def function(i: int) -> dict[str, Any]:
    return {"apiVersion": "aiops/v1", "name": f"fn-{i:03d}", "version": "1.0.0",
            "description": f"Benchmark function {i}.", "provider": "mock",
            "model": "mock-small", "prompt": [{"role": "user", "content": "{{ text }}"}],
            "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
            "output_schema": {"type": "string"},
            "limits": {"daily_calls": 100000, "daily_budget_usd": 50}}


def rows(functions: list[tuple[str, str]], times: list[datetime], rng: random.Random
         ) -> list[LogRow]:
    """Executions at `times`, as a service logs them: mostly the current version (5 % the
    previous), the primary provider and its model (10 % a fallback's), 95 % ok."""
    out = []
    for when in times:
        fid, _name = rng.choice(functions)
        ok = rng.random() < 0.95
        primary = rng.random() < 0.9
        out.append(LogRow(
            function_id=fid, version="1.1.0" if rng.random() < 0.95 else "1.0.0",
            version_id=None, status="ok" if ok else "error", input={"text": "hello"},
            output="a short answer" if ok else None,
            error=None if ok else {"type": rng.choice(("ProviderError", "OutputError")),
                                   "message": "m", "exit_code": 4},
            execution_time=rng.lognormvariate(6, 0.7),
            metadata={"model": "mock-small" if primary else "backup-large", "attempts": []},
            provider="mock" if primary else "backup", cost_usd=rng.uniform(0, 0.002),
            input_tokens=rng.randint(50, 2000), output_tokens=rng.randint(5, 400),
            actor="bench", created_at=when))
    return out


def stage(n: int, now: datetime, rng: random.Random) -> list[datetime]:
    """`n` times over the 24 hours before `now`, in order (a log is written as it happens)."""
    start = now - timedelta(hours=24)
    return sorted(start + timedelta(seconds=rng.uniform(0, 86_340)) for _ in range(n))


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm: plans cached, pages in memory
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


NAIVE = """
SELECT count(*), count(*) FILTER (WHERE l.status = 'error'), sum(l.input_tokens),
       sum(l.output_tokens), sum(l.cost_usd),
       percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY l.execution_time)
FROM ai_function_logs l JOIN ai_functions f ON f.id = l.function_id
WHERE l.created_at >= :since {one} GROUP BY f.name
"""


def naive(store: Store, since: datetime, name: str | None) -> list[Any]:
    sql = NAIVE.format(one="AND f.name = :name" if name else "")
    with store.engine.connect() as conn:
        return conn.execute(text(sql), {"since": since, "name": name}).all()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--executions", type=int, default=1_000_000)
    ap.add_argument("--checkpoints", default="100000,250000,500000,1000000")
    ap.add_argument("--functions", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--database", default=os.environ.get("AIOPS_DATABASE_URL") or PG_DEFAULT)
    args = ap.parse_args()
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",")
                          if 0 < int(c) <= args.executions} | {args.executions})

    with pg_schema(args.database, "bench_stats") as url:
        run(url, args, checkpoints)


def run(url: str, args: argparse.Namespace, checkpoints: list[int]) -> None:
    store = open_store(url, migrate=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        (root / "functions").mkdir(parents=True)
        (root / "providers.yaml").write_text(yaml.safe_dump(PROVIDERS))
        for i in range(args.functions):
            d = root / "functions" / f"fn-{i:03d}"
            d.mkdir()
            (d / "function.yaml").write_text(yaml.safe_dump(function(i), sort_keys=False))
        commands.apply(open_workspace(root, database_url=url), actor="bench <b@example.com>")
    with store.engine.connect() as conn:
        functions = [(str(r.id), r.name) for r in conn.execute(text(
            "SELECT id, name FROM ai_functions ORDER BY name"))]
    one = functions[0][1]
    now = datetime.now(UTC)
    since = now - timedelta(hours=24)
    rng = random.Random(13)
    print(f"PostgreSQL, {args.functions} functions, executions over the last 24 h, written "
          f"through Store.insert_logs in groups of {GROUP} in time order (rollups in the same "
          f"transaction); {load_average()}")
    print(f"{'executions':>10} {'load/s':>8} {'rollup rows':>11} | {'one fn':>8} "
          f"{'naive':>9} | {'all fns':>8} {'naive':>9} | ms, median of {args.repeat}")
    loaded = 0
    for target in checkpoints:
        t0, before = time.perf_counter(), loaded
        times = stage(target - loaded, now, rng)  # this stage: the same 24 hours, denser
        for i in range(0, len(times), GROUP):
            report = store.insert_logs(rows(functions, times[i:i + GROUP], rng))
            assert not report.lost and not report.stored_alone, report
        loaded = target
        rate = (target - before) / (time.perf_counter() - t0)
        with store.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            rollup_rows = conn.execute(text(
                "SELECT count(*) FROM ai_function_rollups")).scalar_one()
        got_one = commands.stats(store, one, since=since, until=now)
        got_all = commands.stats(store, None, since=since, until=now)
        raw_one = naive(store, since, one)[0]
        assert got_one.total.calls == raw_one[0], (got_one.total.calls, raw_one[0])
        assert got_all.total.calls == target
        one_ms = median_ms(lambda: commands.stats(store, one, since=since, until=now),
                           args.repeat)
        naive_one = median_ms(lambda: naive(store, since, one), args.repeat)
        all_ms = median_ms(lambda: commands.stats(store, None, since=since, until=now),
                           args.repeat)
        naive_all = median_ms(lambda: naive(store, since, None), args.repeat)
        print(f"{target:>10,} {rate:>8,.0f} "
              f"{rollup_rows:>11,} | {one_ms:>8.1f} {naive_one:>9.1f} | {all_ms:>8.1f} "
              f"{naive_all:>9.1f}")
        sys.stdout.flush()
    p = got_one.total
    print(f"\n{one} over 24 h: {p.calls} calls, {p.errors} errors, p50 {p.p50_ms} ms, "
          f"p95 {p.p95_ms} ms, p99 {p.p99_ms} ms (naive percentile_disc: "
          f"{', '.join(f'{v:.1f}' for v in raw_one[5])} ms; buckets are within ~9 %)")
    print("Target: one and all <= 100 ms, flat from 100,000 to 1,000,000 executions.")


if __name__ == "__main__":
    main()
