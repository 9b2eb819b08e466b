"""The monitoring page's assembly of stats reports: steps filled, groups summed over functions,
top lists and budgets ordered, ranges checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.commands.monitoring import Budget, Cell, FunctionStats, Group, Overview
from aiops.errors import UsageError
from aiops.stats import WindowStats
from aiops.web.monitoring_view import (
    TOP,
    TOP_BUDGETS,
    assemble,
    breakdown,
    charts,
    range_of,
    steps_of,
)

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


def read(functions: list[FunctionStats], cells: list[Cell], *,
         top_cost: list[FunctionStats] | None = None,
         top_errors: list[FunctionStats] | None = None) -> Overview:
    """An overview of the 24 hours before NOW: the functions' budgets, the top lists as the
    store ranks them, the cells."""
    return Overview(since=NOW - 24 * HOUR, until=NOW,
                    budgets=tuple((f.name, f.budget) for f in sorted(functions,
                                                                      key=lambda f: f.name)),
                    top_cost=tuple(top_cost or ()), top_errors=tuple(top_errors or ()),
                    cells=tuple(cells))


def start(hours_ago: int) -> datetime:
    return NOW.replace(minute=0, second=0) - hours_ago * HOUR


def step(hours_ago: int, stats: WindowStats) -> Group:
    return Group(key=None, start=start(hours_ago), stats=stats)


def cell(hours_ago: int, stats: WindowStats, version: str = "1.0.0", provider: str = "mock",
         model: str = "mock-small") -> Cell:
    return Cell(version=version, provider=provider, model=model, start=start(hours_ago),
                stats=stats)


def test_steps_fill_the_quiet_ones() -> None:
    steps = steps_of([cell(3, ws(2)), cell(0, ws(5, 1), provider=""), cell(0, ws(1))],
                     since=NOW - 3 * HOUR, until=NOW, step_s=3600)
    # since 09:30:20 falls in the 09:00 step; until 12:30:20 ends in the 12:00 step.
    assert [s.start.hour for s in steps] == [9, 10, 11, 12]
    assert [s.stats.calls for s in steps] == [2, 0, 0, 6]  # a step's cells added
    assert steps[-1].stats.errors == 1


def test_a_breakdown_is_most_calls_first_and_names_the_empty_provider() -> None:
    cells = [cell(0, ws(1)), cell(0, ws(3), provider=""), cell(1, ws(2), provider="big"),
             cell(1, ws(1), provider="")]
    assert [(n.label, n.stats.calls) for n in breakdown(cells, "provider")] == [
        ("(none)", 4), ("big", 2), ("mock", 1)]  # a provider's cells of every step added
    assert [(n.label, n.stats.calls) for n in breakdown(cells, "model")] == [
        ("mock-small", 7)]


def test_assemble_orders_the_budgets_and_keeps_the_top_lists_as_ranked() -> None:
    spent = Budget(daily_calls=100, calls_used=90, calls_share=0.9, daily_budget_usd=None,
                   usd_spent=0.0, usd_share=None)
    some = Budget(daily_calls=None, calls_used=3, calls_share=None, daily_budget_usd=1.0,
                  usd_spent=0.2, usd_share=0.2)
    cheap, dear = fn("cheap", [step(0, ws(5, 0, 10))], budget=some), \
        fn("dear", [step(1, ws(1, 1, 900))])
    flaky = fn("flaky", [step(0, ws(9, 4, 10))])
    many = [fn(f"f{i:02}", [step(0, ws(1, 0, 1))]) for i in range(TOP + 3)]
    cells = [cell(0, ws(14, 4, 20)), cell(1, ws(1, 1, 900))]
    view = assemble(read([cheap, dear, fn("idle", [], budget=spent), flaky], cells,
                         top_cost=[dear, cheap, flaky, *many], top_errors=[flaky, dear]),
                    range_=range_of("24h"), name=None)
    assert view.total.calls == 15 and view.total.errors == 5  # the steps added up
    assert view.functions == 4
    assert [n.label for n in view.top_cost] == ["dear", "cheap", "flaky",
                                                *(f.name for f in many[:TOP - 3])]
    assert [n.stats for n in view.top_errors] == [flaky.total, dear.total]
    assert [b.name for b in view.budgets] == ["idle", "cheap"]
    assert [by for by, _ in view.breakdowns] == ["provider", "model"]  # versions: per function


def test_charts_have_tables_matching_their_steps() -> None:
    view = assemble(read([fn("a", [step(0, ws(4, 1, 2_000_000))])],
                         [cell(0, ws(4, 1, 2_000_000), model="")]),
                    range_=range_of("24h"), name="a")
    found = {c.id: c for c in charts(view)}
    calls = found["chart-calls"]
    assert calls.columns == ("Step (UTC)", "calls", "errors")
    assert len(calls.rows) == 25  # 24 hours from the hour `since` falls in
    assert calls.rows[-1][1:] == ("4", "1")
    assert found["chart-error-rate"].rows[-1][1] == "25.0%"
    assert found["chart-cost"].rows[-1][1] == "$0.002"
    assert found["chart-by-version"].rows == (("1.0.0", "4"),)
    assert found["chart-by-provider"].rows == (("mock", "4"),)
    assert found["chart-by-model"].rows == (("(none)", "4"),)
    assert all(c.svg.startswith("<svg") for c in found.values())


def test_the_budgets_table_shows_the_most_used_and_counts_the_rest() -> None:
    def used(calls: int) -> Budget:
        return Budget(daily_calls=100, calls_used=calls, calls_share=calls / 100,
                      daily_budget_usd=None, usd_spent=0.0, usd_share=None)

    many = [fn(f"f{i:03}", [], budget=used(i)) for i in range(TOP_BUDGETS + 7)]
    view = assemble(read(many, []), range_=range_of("24h"), name=None)
    assert len(view.budgets) == TOP_BUDGETS and view.budgets_more == 7
    shares = [b.budget.calls_share or 0.0 for b in view.budgets]
    assert shares == sorted(shares, reverse=True) and shares[0] == (TOP_BUDGETS + 6) / 100
    left = {f.name for f in many} - {b.name for b in view.budgets}
    assert len(left) == 7 and max(int(n[1:]) / 100 for n in left) < shares[-1]
    few = assemble(read(many[:3], []), range_=range_of("24h"), name=None)
    assert (len(few.budgets), few.budgets_more) == (3, 0)


@pytest.mark.parametrize(("key", "now", "since", "until"), [
    ("24h", "2026-03-02T10:17:42", "2026-03-01T10:00:00", "2026-03-02T11:00:00"),
    ("1h", "2026-03-02T10:17:42", "2026-03-02T09:17:00", "2026-03-02T10:18:00"),
    ("7d", "2026-03-08T10:17:42", "2026-03-01T09:00:00", "2026-03-08T12:00:00"),  # 3 h steps
    ("30d", "2026-03-31T13:00:00", "2026-03-01T12:00:00", "2026-04-01T00:00:00"),  # 12 h
    ("24h", "2026-03-02T10:00:00", "2026-03-01T10:00:00", "2026-03-02T11:00:00"),  # on a step
])
def test_a_range_is_whole_steps_to_the_end_of_the_running_one(key: str, now: str, since: str,
                                                               until: str) -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    assert range_of(key).window(at(now)) == (at(since), at(until))


def test_range_of() -> None:
    assert range_of(None).key == "24h"
    assert range_of("1h").step_s == 60
    assert range_of("30d").span == timedelta(days=30)
    with pytest.raises(UsageError, match="1h, 24h, 7d, 30d"):
        range_of("2w")
