"""The monitoring page's assembly of stats reports: steps filled, groups summed over functions,
top lists and budgets ordered, ranges checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.commands.monitoring import Budget, FunctionStats, Group, StatsReport
from aiops.errors import UsageError
from aiops.stats import WindowStats
from aiops.web.monitoring_view import assemble, breakdown, charts, range_of, steps_of

NOW = datetime(2026, 11, 30, 12, 30, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
NO_LIMITS = Budget(daily_calls=None, calls_used=0, calls_share=None, daily_budget_usd=None,
                   usd_spent=0.0, usd_share=None)


def ws(calls: int, errors: int = 0, cost_nusd: int = 0) -> WindowStats:
    return WindowStats(calls=calls, errors_by_kind={"ProviderError": errors} if errors else {},
                       cost_nusd=cost_nusd)


def fn(name: str, groups: list[Group], *, budget: Budget = NO_LIMITS) -> FunctionStats:
    total = sum((g.stats for g in groups), WindowStats())
    return FunctionStats(id=name, name=name, total=total, budget=budget, groups=tuple(groups))


def report(functions: list[FunctionStats], *, by: str | None = None, step_s: int | None = None,
           span: timedelta = 3 * HOUR) -> StatsReport:
    fs = tuple(functions)
    return StatsReport(since=NOW - span, until=NOW, by=by, step_s=step_s, functions=fs,
                       total=sum((f.total for f in fs), WindowStats()))


def step(hours_ago: int, stats: WindowStats) -> Group:
    start = NOW.replace(minute=0, second=0) - hours_ago * HOUR
    return Group(key=None, start=start, stats=stats)


def test_steps_sum_functions_and_fill_the_quiet_ones() -> None:
    r = report([fn("a", [step(3, ws(2)), step(0, ws(1, 1))]), fn("b", [step(0, ws(4))])],
               step_s=3600)
    steps = steps_of(r)
    # since 09:30:20 falls in the 09:00 step; until 12:30:20 ends in the 12:00 step.
    assert [s.start.hour for s in steps] == [9, 10, 11, 12]
    assert [s.stats.calls for s in steps] == [2, 0, 0, 5]
    assert steps[-1].stats.errors == 1


def test_a_report_without_steps_is_refused() -> None:
    with pytest.raises(ValueError, match="step"):
        steps_of(report([]))


def test_versions_across_functions_carry_the_function_name() -> None:
    r = report([fn("a", [Group(key="1.0.0", start=None, stats=ws(1))]),
                fn("b", [Group(key="1.0.0", start=None, stats=ws(3))])], by="version")
    assert [(n.label, n.stats.calls) for n in breakdown(r, qualify=True)] == [
        ("b 1.0.0", 3), ("a 1.0.0", 1)]
    assert [(n.label, n.stats.calls) for n in breakdown(r, qualify=False)] == [("1.0.0", 4)]


def test_an_empty_provider_is_shown_as_none() -> None:
    r = report([fn("a", [Group(key="", start=None, stats=ws(2, 2))])], by="provider")
    assert [n.label for n in breakdown(r, qualify=False)] == ["(none)"]


def test_assemble_orders_the_top_lists_and_budgets() -> None:
    spent = Budget(daily_calls=100, calls_used=90, calls_share=0.9, daily_budget_usd=None,
                   usd_spent=0.0, usd_share=None)
    some = Budget(daily_calls=None, calls_used=3, calls_share=None, daily_budget_usd=1.0,
                  usd_spent=0.2, usd_share=0.2)
    series = report([fn("cheap", [step(0, ws(5, 0, 10))], budget=some),
                     fn("dear", [step(1, ws(1, 1, 900))]),
                     fn("idle", [], budget=spent),
                     fn("flaky", [step(0, ws(9, 4, 10))])], step_s=3600)
    empty = report([])
    view = assemble(series, empty, empty, empty, range_=range_of("24h"), name=None)
    assert view.total.calls == 15 and view.functions == 4
    assert [n.label for n in view.top_cost] == ["dear", "cheap", "flaky"]
    assert [n.label for n in view.top_errors] == ["flaky", "dear"]
    assert [b.name for b in view.budgets] == ["idle", "cheap"]


def test_charts_have_tables_matching_their_steps() -> None:
    series = report([fn("a", [step(0, ws(4, 1, 2_000_000))])], step_s=3600)
    by = report([fn("a", [Group(key="mock", start=None, stats=ws(4))])], by="provider")
    view = assemble(series, report([]), by, report([]), range_=range_of("24h"), name="a")
    found = {c.id: c for c in charts(view)}
    calls = found["chart-calls"]
    assert calls.columns == ("Step (UTC)", "calls", "errors")
    assert calls.rows[-1][1:] == ("4", "1")
    assert found["chart-error-rate"].rows[-1][1] == "25.0%"
    assert found["chart-cost"].rows[-1][1] == "$0.002"
    assert found["chart-by-provider"].rows == (("mock", "4"),)
    assert all(c.svg.startswith("<svg") for c in found.values())


def test_range_of() -> None:
    assert range_of(None).key == "24h"
    assert range_of("1h").step_s == 60
    assert range_of("30d").span == timedelta(days=30)
    with pytest.raises(UsageError, match="1h, 24h, 7d, 30d"):
        range_of("2w")
