"""The stats verb (`aiops stats`, the API's stats routes) on real SQLite and PostgreSQL: its
groups (version, provider, model, day) and its time steps agree with the raw log rows, the
budget share reads today's usage counters, the access lists hide functions from the totals,
and bad windows are refused naming the parameter."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from aiops import commands, latency
from aiops.access import Caller
from aiops.commands.monitoring import overview
from aiops.errors import NotFoundError, UsageError
from aiops.store import Store
from tests.fixtures_db import apply_project, spec_data, write_project
from tests.integration.test_rollups import T0, executions

END = T0 + timedelta(hours=3)
SECRET = {"view": ["finance"], "invoke": ["finance"], "edit": ["finance"]}


@pytest.fixture
def loaded(tmp_path: Path, store: Store) -> Store:
    root = write_project(tmp_path / "proj", [
        spec_data("greet", limits={"daily_calls": 1000, "daily_budget_usd": 2.0}),
        spec_data("ledger", access=SECRET)])
    apply_project(root, url=store.url, store=store, actor="ci <ci@example.com>")
    greet, ledger = store.resolve("greet"), store.resolve("ledger")
    store.insert_logs(executions(greet, 900, seed=11) + executions(ledger, 300, seed=12))
    return store


def raw_groups(store: Store, column: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(function, group) -> calls, errors, tokens, histogram: straight from the log rows."""
    key = {"version": "l.version", "provider": "coalesce(l.provider, '')",
           "model": "l.metadata", "day": "l.created_at"}[column]
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            f"SELECT f.name, {key} AS g, l.status, l.execution_time, l.input_tokens "
            "FROM ai_function_logs l JOIN ai_functions f ON f.id = l.function_id "
            "WHERE l.created_at >= :a AND l.created_at < :b"), {"a": T0, "b": END}).all()
    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "errors": 0, "input_tokens": 0, "h": [0] * latency.BUCKETS})
    for r in rows:
        g = r.g
        if column == "model":
            meta = json.loads(g) if isinstance(g, str) else g
            g = meta.get("model", "")
        elif column == "day":
            g = (g if isinstance(g, datetime) else datetime.fromisoformat(g)).strftime(
                "%Y-%m-%dT00:00:00+00:00")
        o = out[(r.name, g)]
        o["calls"] += 1
        o["errors"] += r.status == "error"
        o["input_tokens"] += r.input_tokens or 0
        if r.execution_time is not None:
            o["h"][latency.bucket_of(r.execution_time / 1000)] += 1
    return out


@pytest.mark.parametrize("by", ["version", "provider", "model", "day"])
def test_groups_agree_with_the_raw_rows(loaded: Store, by: str) -> None:
    report = commands.stats(loaded, None, since=T0, until=END, by=by)
    expected = raw_groups(loaded, by)
    got = {}
    for f in report.functions:
        assert sum(g.stats.calls for g in f.groups) == f.total.calls
        for g in f.groups:
            label = g.start.isoformat() if by == "day" else g.key
            got[(f.name, label)] = {"calls": g.stats.calls, "errors": g.stats.errors,
                                    "input_tokens": g.stats.input_tokens,
                                    "h": list(g.stats.histogram)}
    assert got == dict(expected)
    assert len(got) >= (2 if by == "day" else 4)  # the rows span three hours of one day


def test_a_time_series_sums_to_the_window(loaded: Store) -> None:
    report = commands.stats(loaded, "greet", since=T0, until=END, step_s=900)
    (f,) = report.functions
    starts = [g.start for g in f.groups]
    assert starts == sorted(starts) and len(starts) == 12
    assert all(s.minute % 15 == 0 and s.second == 0 for s in starts if s is not None)
    assert sum(g.stats.calls for g in f.groups) == f.total.calls == 900
    total = sum((g.stats for g in f.groups), type(f.total)())
    assert total == f.total


def test_a_calls_series_is_the_time_series_calls_without_the_rest(loaded: Store) -> None:
    report = commands.stats(loaded, None, since=T0, until=END, step_s=900)
    ids = {f.id: f for f in report.functions}
    series = commands.calls_series(loaded, set(ids), since=T0, until=END, step_s=900)
    for fid, f in ids.items():
        expected = [0] * 12
        for g in f.groups:
            assert g.start is not None
            expected[int((g.start - T0).total_seconds() // 900)] += g.stats.calls
        assert series[fid] == tuple(expected) and sum(series[fid]) == f.total.calls
    # Hourly steps, from a ragged start: its whole hours from the narrow hourly totals, its
    # first step's minutes from the per-minute rows.
    since = T0 + timedelta(minutes=20)
    hourly = commands.calls_series(loaded, set(ids), since=since, until=END, step_s=3600)
    for f in commands.stats(loaded, None, since=since, until=END, step_s=3600).functions:
        expected = [0] * 3
        for g in f.groups:
            assert g.start is not None
            expected[int((g.start - T0).total_seconds() // 3600)] += g.stats.calls
        assert hourly[f.id] == tuple(expected) and 0 < hourly[f.id][0] < hourly[f.id][1]
    # Only the ids asked for; `only` narrows the stats verb the same way.
    greet = loaded.resolve("greet").function_id
    assert set(commands.calls_series(loaded, {greet}, since=T0, until=END, step_s=900)) == {
        greet}
    only = commands.stats(loaded, None, since=T0, until=END, only={greet})
    assert [f.name for f in only.functions] == ["greet"] and only.total.calls == 900
    # A window that does not start on a step: its first step is the one it falls in.
    late = commands.calls_series(loaded, {greet}, since=T0 + timedelta(minutes=20),
                                 until=T0 + timedelta(minutes=60), step_s=900)[greet]
    # Steps 15-30 (its minutes from 20 on only), 30-45 and 45-60.
    assert len(late) == 3 and late[1:] == series[greet][2:4]
    assert 0 < late[0] < series[greet][1]


def test_budget_share_reads_todays_usage_counters(loaded: Store) -> None:
    greet = loaded.resolve("greet")
    now = datetime.now(UTC)
    with loaded.engine.begin() as conn:
        conn.execute(text("INSERT INTO usage_counters (function_id, day, calls_reserved, "
                          "calls_used, usd_reserved, usd_spent) VALUES (:f, :d, 0, 250, 0, 0.5)"),
                     {"f": greet.function_id if loaded.dialect == "postgresql"
                      else greet.function_id.replace("-", ""), "d": now.date()})
    report = commands.stats(loaded, None, since=T0, until=END)
    budgets = {f.name: f.budget for f in report.functions}
    assert budgets["greet"].calls_used == 250 and budgets["greet"].calls_share == 0.25
    assert budgets["greet"].usd_spent == 0.5 and budgets["greet"].usd_share == 0.25
    assert budgets["ledger"].calls_share is None and budgets["ledger"].usd_share is None


def test_functions_the_caller_may_not_view_are_invisible(loaded: Store) -> None:
    outsider = caller(())
    insider = caller(("finance",))
    seen = commands.stats(loaded, None, since=T0, until=END, caller=outsider)
    assert [f.name for f in seen.functions] == ["greet"]
    assert seen.total.calls == 900  # ledger's calls are not in the total either
    everything = commands.stats(loaded, None, since=T0, until=END, caller=insider)
    assert everything.total.calls == 1200
    with pytest.raises(NotFoundError) as hidden:
        commands.stats(loaded, "ledger", since=T0, until=END, caller=outsider)
    with pytest.raises(NotFoundError) as unknown:
        commands.stats(loaded, "nothing", since=T0, until=END, caller=outsider)
    assert str(hidden.value).replace("ledger", "X") == str(unknown.value).replace("nothing", "X")
    by_id = loaded.resolve("ledger").function_id
    assert commands.stats(loaded, by_id, since=T0, until=END,
                          caller=insider).functions[0].name == "ledger"


def caller(groups: tuple[str, ...]) -> Caller:
    return Caller(token_id="t", key_id="k", token_name="n", user_id="u", role="viewer",
                  groups=groups)


@pytest.mark.parametrize(("kw", "names"), [
    ({"since": END, "until": T0}, "since"),
    ({"by": "actor"}, "by"),
    ({"step_s": 90}, "step"),
    ({"step_s": 60, "since": T0 - timedelta(days=30)}, "step"),
    ({"step_s": 3600, "by": "day"}, "step"),
])
def test_bad_windows_are_refused_naming_the_parameter(loaded: Store, kw: dict[str, Any],
                                                      names: str) -> None:
    args = {"since": T0, "until": END, **kw}
    with pytest.raises(UsageError) as refused:
        commands.stats(loaded, "greet", **args)
    assert names in str(refused.value)


def raw_sums(rows: dict[tuple[str, str], dict[str, Any]], names: set[str]
             ) -> dict[str, dict[str, Any]]:
    """raw_groups' rows of the functions `names`, added up per group."""
    out: dict[str, dict[str, Any]] = {}
    for (name, g), o in rows.items():
        if name in names:
            s = out.setdefault(g, {"calls": 0, "errors": 0, "input_tokens": 0,
                                   "h": [0] * latency.BUCKETS})
            for k in ("calls", "errors", "input_tokens"):
                s[k] += o[k]
            s["h"] = [a + b for a, b in zip(s["h"], o["h"], strict=True)]
    return out


@pytest.mark.parametrize("step_s", [900, 3600])
def test_the_overviews_cells_add_up_to_the_raw_rows(loaded: Store, step_s: int) -> None:
    """overview (the monitoring page): each function's totals are the stats verb's, and its
    cells, summed over the functions the caller may view, agree per version (but of every
    function), provider and model with the raw log rows, and per step with the stats verb's
    time series."""
    admin = Caller(token_id="a", key_id="k", token_name="n", user_id="u", role="admin",
                   groups=())
    for who, names in ((None, {"greet", "ledger"}), (admin, {"greet", "ledger"}),
                       (caller(()), {"greet"})):
        read = overview(loaded, None, since=T0, until=END, step_s=step_s, top=1, caller=who)
        cells = read.cells
        report = commands.stats(loaded, None, since=T0, until=END, caller=who, latency=False)
        assert read.budgets == tuple((f.name, f.budget) for f in report.functions)
        assert {n for n, _ in read.budgets} == names
        # The top one by cost and by errors, ranked in SQL, with the stats verb's totals.
        for listed, amount in ((read.top_cost, "cost_nusd"), (read.top_errors, "errors")):
            ranked = sorted(report.functions, key=lambda f, a=amount: (  # type: ignore[misc]
                -getattr(f.total, a), f.name))
            assert listed == (ranked[0],) and getattr(listed[0].total, amount) > 0
        # Of every function (the operator, an admin), the cells are the across rollups'
        # (aiops.store.rollups): no versions, a version being one function's.
        every = who is None or who.is_admin
        assert ({c.version for c in cells} == {""}) is every
        for by in ("provider", "model") if every else ("version", "provider", "model"):
            got: dict[str, dict[str, Any]] = {}
            for c in cells:
                s = got.setdefault(getattr(c, by), {"calls": 0, "errors": 0,
                                                    "input_tokens": 0,
                                                    "h": [0] * latency.BUCKETS})
                s["calls"] += c.stats.calls
                s["errors"] += c.stats.errors
                s["input_tokens"] += c.stats.input_tokens
                s["h"] = [a + b for a, b in zip(s["h"], c.stats.histogram, strict=True)]
            assert got == raw_sums(raw_groups(loaded, by), names)
        steps: dict[Any, Any] = {}
        for f in commands.stats(loaded, None, since=T0, until=END, step_s=step_s,
                                caller=who).functions:
            for g in f.groups:
                steps[g.start] = steps[g.start] + g.stats if g.start in steps else g.stats
        per_step: dict[Any, Any] = {}
        for c in cells:
            per_step[c.start] = per_step[c.start] + c.stats if c.start in per_step \
                else c.stats
        assert per_step == steps and len(steps) == 3 * 3600 // step_s
        assert sum(c.stats.calls for c in cells) == report.total.calls \
            == (1200 if "ledger" in names else 900)
    one = overview(loaded, "greet", since=T0, until=END, step_s=3600, top=10)
    assert [n for n, _ in one.budgets] == [f.name for f in one.top_errors] == ["greet"]
    assert sum(c.stats.calls for c in one.cells) == 900
    with pytest.raises(NotFoundError):
        overview(loaded, "ledger", since=T0, until=END, step_s=3600, top=10,
                 caller=caller(()))
    with pytest.raises(UsageError, match="step"):
        overview(loaded, None, since=T0, until=END, step_s=90, top=10)


def test_without_latency_the_amounts_are_the_same(loaded: Store) -> None:
    full = commands.stats(loaded, None, since=T0, until=END, by="provider")
    light = commands.stats(loaded, None, since=T0, until=END, by="provider", latency=False)
    for f, g in zip(full.functions, light.functions, strict=True):
        assert (g.total.calls, g.total.errors_by_kind, g.total.cost_nusd, g.total.input_tokens) \
            == (f.total.calls, f.total.errors_by_kind, f.total.cost_nusd, f.total.input_tokens)
        assert g.total.p95_ms is None and f.total.p95_ms is not None
        assert [x.stats.calls for x in g.groups] == [x.stats.calls for x in f.groups]
