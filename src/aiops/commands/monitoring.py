"""The stats verb: calls, errors, error rate, p50/p95/p99 latency, tokens, cost and the share
of the day's budget and quota used, per function, read from the rollups (never the log
table: `aiops.store.rollups`). `aiops stats` and the API's stats routes both call it.

- `stats(store, name, since=..., until=..., by=..., step_s=..., caller=...)`: one function
  (`name`: its name or id) or every function the caller may view (None), over the window
  [since, until), in total, and per `by` (version, provider, model, day) or per time step of
  `step_s` seconds. A function the caller may not view is, to it, a function that does not
  exist: NotFoundError for one, left out of all.
- `overview(store, name, since=..., until=..., step_s=..., caller=...)`: what the web UI's
  monitoring page shows: each function's totals, and the same functions summed in SQL per
  version, provider, model and step (`Cell`s: every chart and breakdown is a sum of them).
- `backfill_rollups(store)`, `compact_rollups(store, older_than_s)`: `aiops rollups`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.access import Caller, may
from aiops.errors import NotFoundError, UsageError, shown
from aiops.stats import BY, Subject, WindowStats, at_minute, minute_of, summed
from aiops.store import Store
from aiops.store.rollups import Ranked

MIN_STEP_S = 60  # a minute: the rollups' grain
MAX_STEPS = 2000  # time steps in one answer
DEFAULT_SINCE = timedelta(hours=24)
COMPACT_AFTER = timedelta(days=7)  # the documented retention of per-minute rows


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Today's (UTC) use of a function's daily limits; a share is None without the limit."""

    daily_calls: int | None
    calls_used: int
    calls_share: float | None
    daily_budget_usd: float | None
    usd_spent: float
    usd_share: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"daily_calls": self.daily_calls, "calls_used": self.calls_used,
                "calls_share": self.calls_share, "daily_budget_usd": self.daily_budget_usd,
                "usd_spent": round(self.usd_spent, 9), "usd_share": self.usd_share}


@dataclass(frozen=True, kw_only=True)
class Group:
    """The stats of one group (`key`: a version, provider or model) or one time step (`start`),
    or both."""

    key: str | None
    start: datetime | None
    stats: WindowStats

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.key is not None:
            out["key"] = self.key
        if self.start is not None:
            out["start"] = self.start.isoformat()
        return {**out, **self.stats.as_dict()}


@dataclass(frozen=True, kw_only=True)
class FunctionStats:
    id: str
    name: str
    total: WindowStats
    budget: Budget
    groups: tuple[Group, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, **self.total.as_dict(),
                "budget": self.budget.as_dict(), "groups": [g.as_dict() for g in self.groups]}


@dataclass(frozen=True, kw_only=True)
class StatsReport:
    since: datetime
    until: datetime
    by: str | None
    step_s: int | None
    functions: tuple[FunctionStats, ...]
    total: WindowStats = field(default_factory=WindowStats)

    def as_dict(self) -> dict[str, Any]:
        """What `aiops stats --json` prints and the API answers."""
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "by": self.by, "step_s": self.step_s, "total": self.total.as_dict(),
                "functions": [f.as_dict() for f in self.functions]}


def _share(used: float, limit: float | None) -> float | None:
    if limit is None:
        return None
    if limit <= 0:
        return None if used <= 0 else float("inf")
    return round(used / limit, 6)


def budget_of(subject: Subject) -> Budget:
    limits = subject.limits
    calls = limits.get("daily_calls")
    usd = limits.get("daily_budget_usd")
    calls = calls if isinstance(calls, int) and not isinstance(calls, bool) else None
    usd = float(usd) if isinstance(usd, int | float) and not isinstance(usd, bool) else None
    return Budget(daily_calls=calls, calls_used=subject.calls_used,
                  calls_share=_share(subject.calls_used, calls), daily_budget_usd=usd,
                  usd_spent=subject.usd_spent, usd_share=_share(subject.usd_spent, usd))


def quota_use(store: Store, caller: Caller | None, now: datetime | None = None
              ) -> Budget | None:
    """Today's (UTC) use of the caller's token's daily quotas (None: it has none, or the
    operator, who has no token)."""
    if caller is None or (caller.daily_calls is None and caller.daily_usd is None):
        return None
    calls, usd = store.token_usage(caller.token_id, (now or datetime.now(UTC)).date())
    return Budget(daily_calls=caller.daily_calls, calls_used=calls,
                  calls_share=_share(calls, caller.daily_calls),
                  daily_budget_usd=caller.daily_usd, usd_spent=usd,
                  usd_share=_share(usd, caller.daily_usd))


def check_window(since: datetime | None, until: datetime | None, by: str | None,
                 step_s: int | None, now: datetime) -> tuple[datetime, datetime]:
    """The window, checked: a UsageError naming the parameter that is out of bounds."""
    until = now if until is None else until.astimezone(UTC) if until.tzinfo \
        else until.replace(tzinfo=UTC)
    since = until - DEFAULT_SINCE if since is None else since.astimezone(UTC) if since.tzinfo \
        else since.replace(tzinfo=UTC)
    if since >= until:
        raise UsageError(f"since ({since.isoformat()}) must be before until "
                         f"({until.isoformat()})")
    if by is not None and by not in BY:
        raise UsageError(f"by {shown(by)}: use one of {', '.join(BY)}")
    if step_s is not None:
        if step_s < MIN_STEP_S or step_s % MIN_STEP_S:
            raise UsageError(f"step {step_s}: a whole number of minutes, in seconds "
                             f"(60, 300, 3600, ...)")
        if by == "day":
            raise UsageError("step and by=day both cut time: give one of them")
        steps = (until - since).total_seconds() / step_s
        if steps > MAX_STEPS:
            raise UsageError(f"step {step_s}: the window holds {steps:.0f} steps of it, more "
                             f"than {MAX_STEPS}; use a longer step or a shorter window")
    return since, until


def stats(store: Store, name: str | None = None, *, since: datetime | None = None,
          until: datetime | None = None, by: str | None = None, step_s: int | None = None,
          caller: Caller | None = None, now: datetime | None = None,
          only: Collection[str] | None = None, latency: bool = True) -> StatsReport:
    """The stats of one function (`name`: a name or id) or of every function `caller` may
    view, over [since, until) (default: the last 24 hours); `only`: of these function ids
    alone (a page of the web UI's list); `latency` False: without the percentiles (calls,
    errors, tokens and cost alone: a lighter read, for lists of many functions)."""
    now = now or datetime.now(UTC)
    since, until = check_window(since, until, by, step_s, now)
    subjects, ids = _viewable(store, name, caller, now, only)
    return _report(store, subjects, ids, since, until, by, step_s, latency)


def _report(store: Store, subjects: list[Subject], ids: list[str] | None, since: datetime,
            until: datetime, by: str | None, step_s: int | None, latency: bool
            ) -> StatsReport:
    by_id = {s.id: s for s in subjects}
    found = store.stats(ids, since, until, by=by, step_minutes=step_s // 60 if step_s else None,
                        buckets=latency)
    totals: dict[str, WindowStats] = {}
    groups: dict[str, list[Group]] = {}
    if by is None and step_s is None:  # one Sums per function: its total
        totals = {s.function_id: s.stats for s in found if s.function_id in by_id}
    else:
        for s in found:
            if s.function_id in by_id:
                groups.setdefault(s.function_id, []).append(Group(
                    key=s.group, start=None if s.start is None else at_minute(s.start),
                    stats=s.stats))
        totals = {fid: summed(g.stats for g in gs) for fid, gs in groups.items()}
    none = WindowStats()
    functions = tuple(FunctionStats(id=s.id, name=s.name, total=totals.get(s.id, none),
                                    budget=budget_of(s), groups=tuple(groups.get(s.id, ())))
                      for s in sorted(subjects, key=lambda s: s.name))
    total = summed(f.total for f in functions)
    return StatsReport(since=since, until=until, by=by, step_s=step_s, functions=functions,
                       total=total)


def calls_series(store: Store, function_ids: Collection[str], *, since: datetime,
                 until: datetime, step_s: int) -> dict[str, tuple[int, ...]]:
    """Calls per step of `step_s` seconds, oldest first, for each of `function_ids` (ids the
    caller may view: the web UI's list passes a page of `list_functions`), from the rollups,
    without their latency buckets: a sparkline's numbers. Steps are whole multiples of
    `step_s` since the epoch, the first the one `since` falls in, the last the one before
    `until`'s."""
    since, until = check_window(since, until, None, step_s, until)
    step = step_s // 60
    base = minute_of(since) - minute_of(since) % step
    n = max(1, -(-(minute_of(until) - base) // step))
    found = store.calls_per_step(sorted(function_ids), since, until, step)
    out = {}
    for fid in function_ids:
        counts = [0] * n
        for start, calls in found.get(fid, {}).items():
            i = (start - base) // step
            if 0 <= i < n:
                counts[i] += calls
        out[fid] = tuple(counts)
    return out


@dataclass(frozen=True, kw_only=True)
class Cell:
    """The stats of a set of functions in one version, provider and model and one time
    step: every breakdown of them is a sum of cells."""

    version: str
    provider: str
    model: str
    start: datetime
    stats: WindowStats


@dataclass(frozen=True, kw_only=True)
class Overview:
    """What the monitoring page shows of the functions a caller may view over [since,
    until): each function's budget use today (by name), the `top` functions by cost and by
    errors with their totals (no latency), and the cells."""

    since: datetime
    until: datetime
    budgets: tuple[tuple[str, Budget], ...]
    top_cost: tuple[FunctionStats, ...]
    top_errors: tuple[FunctionStats, ...]
    cells: tuple[Cell, ...]


def overview(store: Store, name: str | None = None, *, since: datetime | None = None,
             until: datetime | None = None, step_s: int, top: int, caller: Caller | None = None,
             now: datetime | None = None) -> Overview:
    """What the monitoring page shows of one function (`name`) or of every function `caller`
    may view over [since, until): the `top` of most cost and of most errors, ranked in SQL
    (their totals are the stats verb's, `stats(..., latency=False)`; the others' rows never
    leave the database), each function's budget use today, and the cells of those functions
    summed over them in SQL per version, provider, model and step of `step_s` seconds (the
    series, the headline and every breakdown are sums of the cells: a few rows per step, not
    one per function and step; of every function, read from the rollups summed across
    functions, whose cells have no version, ''). Three reads of the rollups, whatever the
    number of functions."""
    now = now or datetime.now(UTC)
    since, until = check_window(since, until, None, step_s, now)
    subjects, ids = _viewable(store, name, caller, now)
    by_id = {s.id: s for s in subjects}
    by_cost, by_errors = store.stats_top(ids, since, until, top)

    def listed(ranked: list[Ranked]) -> tuple[FunctionStats, ...]:
        return tuple(FunctionStats(id=r.function_id, name=r.name, total=r.stats,
                                   budget=budget_of(by_id[r.function_id]))
                     for r in ranked if r.function_id in by_id)

    return Overview(
        since=since, until=until,
        budgets=tuple((s.name, budget_of(s)) for s in sorted(subjects, key=lambda s: s.name)),
        top_cost=listed(by_cost), top_errors=listed(by_errors),
        cells=tuple(Cell(version=c.version, provider=c.provider, model=c.model,
                         start=at_minute(c.start), stats=c.stats)
                    for c in store.stats_cells(ids, since, until, step_s // 60)))


def _viewable(store: Store, name: str | None, caller: Caller | None, now: datetime,
              only: Collection[str] | None = None) -> tuple[list[Subject], list[str] | None]:
    """The functions asked for that `caller` may view, and the ids to read the rollups of
    (None: every function, for the operator and an admin, who may view any function, even
    one created meanwhile). A function it may not view is, to it, one that does not
    exist."""
    subjects = [s for s in store.stats_subjects(name, now.date(), None if only is None
                                                else sorted(only))
                if may(caller, "view", s.access)]
    if name is not None and not subjects:
        raise NotFoundError(f"no function {shown(name)}: no function has that name or id, or "
                            "your token may not view it")
    every = name is None and only is None and (caller is None or caller.is_admin)
    return subjects, None if every else [s.id for s in subjects]


def backfill_rollups(store: Store) -> int:
    """`aiops rollups backfill`: recompute the rollups from every log row (idempotent); the
    number of executions counted."""
    return store.backfill_rollups()


def compact_rollups(store: Store, older_than: timedelta = COMPACT_AFTER,
                    now: datetime | None = None) -> int:
    """`aiops rollups compact`: delete per-minute rollups older than `older_than` (the hourly
    rows keep their sums); the number of rows deleted."""
    if older_than < timedelta(hours=1):
        raise UsageError("--older-than must be at least 1h: the last hour is still being "
                         "written")
    return store.compact_rollups((now or datetime.now(UTC)) - older_than)
