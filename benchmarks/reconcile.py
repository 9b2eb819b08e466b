"""Reconciler benchmark: apply of N new functions, plan of N unchanged ones (DESIGN §10).

Targets: plan of 1,000 unchanged functions <= 1 s as a command (issue 11); apply of 1,000
new functions <= 5 s; on SQLite and PostgreSQL. The PostgreSQL URL comes from
AIOPS_DATABASE_URL, else the local default; a fresh schema is created for the run and dropped
after. Prints the figures in process (apply, plan and its parts, a no-op apply), then as
commands (`aiops plan`, a no-op `aiops apply`: wall, CPU, peak RSS, medians, with `python -c
pass` as the baseline), and the number of SQL statements of each plan (which must not grow
with the number of functions). Bytecode is compiled first (measure.py).

    .venv/bin/python benchmarks/reconcile.py [--functions 1000] [--only sqlite|postgres]
        [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from measure import Measured, compile_bytecode, load_average, median_of
from sqlalchemy import event

from aiops import commands
from aiops.store import open_store
from aiops.store.engine import dispose_engines
from aiops.workspace import open_workspace

AIOPS = str(Path(sys.executable).parent / "aiops")
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROVIDERS = {"providers": {"mock": {"type": "openai", "api_key_env": "MOCK_API_KEY", "models": {
    "mock-small": {"input_per_mtok": 0.1, "output_per_mtok": 0.2}}}}}


def function(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "aiops/v1", "name": f"fn-{i:05d}", "version": "1.0.0",
        "description": f"Benchmark function {i}.", "provider": "mock", "model": "mock-small",
        "configuration": {"temperature": 0.2, "max_tokens": 200},
        "prompt": [{"role": "system", "content": "You are a careful assistant."},
                   {"role": "user", "content": f"Task {i}: summarise {{{{ text }}}} in "
                                               "{{ bullets }} bullets."}],
        "input_schema": {"type": "object", "required": ["text"], "properties": {
            "text": {"type": "string", "maxLength": 20000},
            "bullets": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3}},
            "additionalProperties": False},
        "output_schema": {"type": "object", "required": ["bullets"], "properties": {
            "bullets": {"type": "array", "items": {"type": "string"}}}},
        "limits": {"rpm": 60, "daily_calls": 1000},
        "metadata": {"owner": "bench", "tags": ["bench"]},
    }


def make_project(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    (root / "providers.yaml").write_text(yaml.safe_dump(PROVIDERS))
    for i in range(n):
        d = root / "functions" / f"fn-{i:05d}"
        d.mkdir(parents=True)
        (d / "function.yaml").write_text(yaml.safe_dump(function(i), sort_keys=False))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def count_statements(url: str, fn: Callable[[], Any]) -> int:
    engine = open_store(url).engine
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return len(seen)


def commands_timed(label: str, url: str, root: Path, n: int, repeat: int,
                   baseline: Measured) -> None:
    """`aiops plan` and a no-op `aiops apply` as a user runs them: new processes."""
    env = {**os.environ, "AIOPS_DATABASE_URL": url, "AIOPS_PROJECT": "bench"}
    for verb, target in (("plan", 1.0), ("apply", None)):
        extra = ["--auto-approve"] if verb == "apply" else []
        m = median_of([AIOPS, verb, *extra, "-C", str(root)], repeat, env=env)
        goal = f" (target <= {target} s{' ok' if m.wall_s <= target else ' OVER'})" \
            if target else ""
        print(f"{label:10} n={n}: `aiops {verb}` of {n} unchanged: {m.wall_s:.2f} s wall, "
              f"{m.cpu_s:.2f} s CPU, {m.peak_mb:.0f} MB peak, {m.wall_s / baseline.wall_s:.0f}x "
              f"`python -c pass`{goal}")


def bench(label: str, url: str, root: Path, n: int) -> dict[str, float]:
    st = open_store(url, migrate=True)
    ws = open_workspace(root, database_url=url)
    t_apply, result = timed(lambda: commands.apply(ws.reopened(), actor="bench", store=st))
    assert result.wrote and result.plan.counts()["create"] == n, result.plan.verdict()
    plans = []
    for _ in range(5):
        t, plan = timed(lambda: commands.plan(ws.reopened(), store=st))
        assert plan.verdict() == "No changes.", plan.verdict()
        plans.append(t)
    ws = ws.reopened()
    t_files, _ = timed(lambda: ws.project)
    t_checks, _ = timed(lambda: ws.diagnostics)
    t_state, state = timed(lambda: st.read_state(ws.project_id))
    specs = {name: lf.spec for name, lf in ws.project.functions.items()}
    from aiops.plan import diff

    t_diff, _ = timed(lambda: diff(specs, state, project=ws.project_id))
    statements = count_statements(url, lambda: commands.plan(ws.reopened(), store=st))
    t_noop, again = timed(lambda: commands.apply(ws.reopened(), actor="bench", store=st))
    assert not again.wrote
    figures = {"apply_new_s": t_apply, "plan_unchanged_s": statistics.median(plans),
               "load_files_s": t_files, "checks_s": t_checks, "read_state_s": t_state,
               "diff_s": t_diff,
               "apply_noop_s": t_noop, "plan_statements": statements}
    print(f"{label:10} n={n}: apply {n} new {t_apply:.2f} s (target <= 5 s); "
          f"plan {n} unchanged {figures['plan_unchanged_s']:.2f} s median of 5 "
          f"(target <= 1 s) = load files {t_files:.2f} + checks {t_checks:.2f} + read state "
          f"{t_state:.2f} + diff {t_diff:.2f}; "
          f"second apply {t_noop:.2f} s; SQL statements per plan: {statements}")
    return figures


def pg_schema_url(base: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    plain = base.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        dispose_engines()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--functions", type=int, default=1000)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command")
    args = parser.parse_args()
    os.environ["AIOPS_PROJECT"] = "bench"
    compile_bytecode()
    print(load_average())
    baseline = median_of([sys.executable, "-c", "pass"], args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        make_project(root, args.functions)
        # Smaller runs first: the number of statements per plan must not grow with n.
        if args.only in (None, "sqlite"):
            small = Path(tmp) / "small"
            make_project(small, 10)
            bench("sqlite", f"sqlite:///{tmp}/small.db", small, 10)
            bench("sqlite", f"sqlite:///{tmp}/bench.db", root, args.functions)
            commands_timed("sqlite", f"sqlite:///{tmp}/bench.db", root, args.functions,
                           args.repeat, baseline)
        if args.only in (None, "postgres"):
            base = os.environ.get("AIOPS_DATABASE_URL") or PG_DEFAULT
            if not base.startswith("postgres"):
                base = PG_DEFAULT
            try:
                url, drop = pg_schema_url(base)
            except Exception as exc:  # no server: say so, do not pretend
                print(f"postgres: skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
                return 1
            try:
                bench("postgres", url, root, args.functions)
                commands_timed("postgres", url, root, args.functions, args.repeat, baseline)
            finally:
                drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
