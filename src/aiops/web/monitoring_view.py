"""What the monitoring page shows, assembled from the stats verb's reports (`aiops.commands.
monitoring.stats`, the numbers `aiops stats` prints and the API serves, read from the rollups):
pure functions, no store, no request, so that the page shows the same numbers as the CLI by
construction and the assembly is tested without a server.

- `RANGES`, `range_of(key)`: the time-range picker's choices (1 h, 24 h, 7 d, 30 d), each with
  the step of its time series (a step of whole hours reads the hourly rollups).
- `assemble(overview, ...)`: the headline totals, one point per step (steps without
  executions are zero calls, not missing), the breakdowns (sums of the same cells: version,
  provider, model and step), the top functions by cost and by errors, and the budgets of the
  limited functions most used today.
- `charts(view)`: the view's charts as SVG (`aiops.web.charts`), each with the rows of its
  data table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiops.commands.monitoring import Budget, Cell, Overview
from aiops.errors import UsageError, shown
from aiops.stats import WindowStats, summed
from aiops.web.charts import Bar, Series, bar_chart, format_value, time_chart

TOP = 10  # functions in each top list
TOP_BUDGETS = 25  # limited functions in the budgets table, the most used first


def step_start(when: datetime, step: timedelta) -> datetime:
    """The start of the step `when` falls in, steps aligned on the epoch as the rollups'
    are."""
    epoch = datetime(1970, 1, 1, tzinfo=when.tzinfo)
    return epoch + step * ((when - epoch) // step)


@dataclass(frozen=True, kw_only=True)
class Range:
    key: str
    label: str
    span: timedelta
    step_s: int

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The range's window at `now`, in whole steps (aligned on the epoch, as the rollups'
        are): from the start of the step `span` before now to the end of the step now falls
        in, the one still running. Every point of a chart is then a whole step, and a range
        of hourly steps reads hourly rollups alone: the running hour's hold it up to now.
        (Its end is bounded, not left open, so that the database's planner, whose statistics
        end where the last ANALYZE found the rollups, still reads the few newest rows by
        their index.)"""
        step = timedelta(seconds=self.step_s)
        return step_start(now - self.span, step), step_start(now, step) + step


RANGES = (Range(key="1h", label="1 hour", span=timedelta(hours=1), step_s=60),
          Range(key="24h", label="24 hours", span=timedelta(hours=24), step_s=3600),
          Range(key="7d", label="7 days", span=timedelta(days=7), step_s=3 * 3600),
          Range(key="30d", label="30 days", span=timedelta(days=30), step_s=12 * 3600))
DEFAULT_RANGE = "24h"


def range_of(key: str | None) -> Range:
    """The range a picker key names (None: 24 h); a UsageError listing them otherwise."""
    key = key or DEFAULT_RANGE
    for r in RANGES:
        if r.key == key:
            return r
    raise UsageError(f"range {shown(key)}: use one of {', '.join(r.key for r in RANGES)}")


@dataclass(frozen=True, kw_only=True)
class Step:
    start: datetime
    stats: WindowStats


@dataclass(frozen=True, kw_only=True)
class Named:
    """One row of a breakdown or a top list: a label and its stats."""

    label: str
    stats: WindowStats


@dataclass(frozen=True, kw_only=True)
class BudgetUse:
    name: str
    budget: Budget


@dataclass(frozen=True, kw_only=True)
class MonitoringView:
    range: Range
    since: datetime
    until: datetime
    name: str | None  # one function, or None: every function the caller may view
    functions: int
    total: WindowStats
    steps: tuple[Step, ...]
    breakdowns: tuple[tuple[str, tuple[Named, ...]], ...]  # (version|provider|model, rows)
    top_cost: tuple[Named, ...]
    top_errors: tuple[Named, ...]
    budgets: tuple[BudgetUse, ...]  # the TOP_BUDGETS most used
    budgets_more: int = 0  # limited functions not in `budgets`, each used no more


def steps_of(cells: Iterable[Cell], *, since: datetime, until: datetime, step_s: int
             ) -> tuple[Step, ...]:
    """One Step per step of the window (from the step `since` falls in, aligned on the epoch
    as the rollups' steps are), the sum of its cells, zero where nothing ran."""
    step = timedelta(seconds=step_s)
    start = step_start(since, step)
    sums: dict[datetime, WindowStats] = {}
    for c in cells:
        sums[c.start] = sums.get(c.start, WindowStats()) + c.stats
    out = []
    while start < until:
        out.append(Step(start=start, stats=sums.get(start, WindowStats())))
        start += step
    return tuple(out)


def breakdown(cells: Iterable[Cell], by: str) -> tuple[Named, ...]:
    """The cells summed per `by` (version, provider or model), most calls first; '' (an
    execution that reached no provider) reads "(none)"."""
    sums: dict[str, WindowStats] = {}
    for c in cells:
        label = getattr(c, by) or "(none)"
        sums[label] = sums.get(label, WindowStats()) + c.stats
    return tuple(Named(label=k, stats=v) for k, v in
                 sorted(sums.items(), key=lambda kv: (-kv[1].calls, kv[0])))


def assemble(overview: Overview, *, range_: Range, name: str | None) -> MonitoringView:
    """The page's view of `overview` (the stats verb's `overview`, read over the window of
    `range_` in steps of it: the top lists, ranked; each function's budget use; the cells
    summed over the functions per version, provider, model and step: the charts, the
    breakdowns, and added up, the headline). Versions are broken down on one function's page
    (`name`) alone: a version is one function's."""
    cells = overview.cells
    limited = [(n, b) for n, b in overview.budgets
               if b.daily_calls is not None or b.daily_budget_usd is not None]
    limited.sort(key=lambda nb: (-max(nb[1].calls_share or 0.0, nb[1].usd_share or 0.0),
                                 nb[0]))
    shown = ("provider", "model") if name is None else ("version", "provider", "model")
    return MonitoringView(
        range=range_, since=overview.since, until=overview.until, name=name,
        functions=len(overview.budgets), total=summed(c.stats for c in cells),
        steps=steps_of(cells, since=overview.since, until=overview.until,
                       step_s=range_.step_s),
        breakdowns=tuple((by, breakdown(cells, by)) for by in shown),
        top_cost=tuple(Named(label=f.name, stats=f.total) for f in overview.top_cost[:TOP]),
        top_errors=tuple(Named(label=f.name, stats=f.total)
                         for f in overview.top_errors[:TOP]),
        budgets=tuple(BudgetUse(name=n, budget=b) for n, b in limited[:TOP_BUDGETS]),
        budgets_more=max(0, len(limited) - TOP_BUDGETS))


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One chart of the page: its SVG, and its data as a table (the columns, then a row per
    step or bar, values formatted as the chart labels them)."""

    id: str
    title: str
    svg: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _time_chart(view: MonitoringView, chart_id: str, title: str, unit: str,
                lines: Sequence[tuple[str, str]], area: bool = False) -> Chart:
    """A chart of WindowStats attributes (`lines`: (legend, attribute)) over the steps."""
    def value(s: WindowStats, attr: str) -> float | None:
        v = getattr(s, attr)
        return None if v is None else float(v)

    series = [Series(name=legend, points=tuple((st.start, value(st.stats, attr))
                                               for st in view.steps))
              for legend, attr in lines]
    svg = time_chart(series, chart_id=chart_id, title=title, since=view.since,
                     until=view.until, unit=unit, area=area)
    rows = tuple((f"{st.start:%Y-%m-%d %H:%M}",
                  *(format_value(value(st.stats, attr), unit) for _, attr in lines))
                 for st in view.steps)
    return Chart(id=chart_id, title=title, svg=svg,
                 columns=("Step (UTC)", *(legend for legend, _ in lines)), rows=rows)


def _bar_chart(chart_id: str, title: str, unit: str, rows: Sequence[Named], attr: str
               ) -> Chart:
    bars = [Bar(label=r.label, value=float(getattr(r.stats, attr))) for r in rows]
    return Chart(id=chart_id, title=title, svg=bar_chart(bars, chart_id=chart_id, title=title,
                                                         unit=unit),
                 columns=("", title), rows=tuple((b.label, format_value(b.value, unit))
                                                 for b in bars))


def charts(view: MonitoringView) -> tuple[Chart, ...]:
    """The time charts, then a calls chart per breakdown."""
    step = view.range.step_s // 60
    per = f"per {step // 60} h" if step >= 60 else f"per {step} min"
    out = [
        _time_chart(view, "chart-calls", f"Calls and errors {per}", "count",
                    [("calls", "calls"), ("errors", "errors")], area=True),
        _time_chart(view, "chart-error-rate", f"Error rate {per}", "ratio",
                    [("error rate", "error_rate")]),
        _time_chart(view, "chart-latency", f"Latency {per}", "ms",
                    [("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")]),
        _time_chart(view, "chart-cost", f"Cost {per}", "usd", [("cost", "cost_usd")],
                    area=True),
    ]
    for by, rows in view.breakdowns:
        out.append(_bar_chart(f"chart-by-{by}", f"Calls by {by}", "count", rows, "calls"))
    return tuple(out)
