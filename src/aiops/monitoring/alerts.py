"""Alert rules, decided over values (DESIGN §8): what each rule measures, whether it holds,
and how its state moves. No I/O: the stats, the usage and the stored states are passed in,
and the decisions (new states, history events, notifications) are returned as data for the
store to write in one transaction.

A rule's state:

    ok ──condition holds──▶ pending ──held for `for`──▶ firing ──condition gone──▶ ok
     ▲                        │                           │
     └──condition gone────────┘                           └─ every `repeat`: notify again

Without `for` a rule goes from ok to firing at once. A notification (an `Event`) goes out when
a rule starts firing, when it resolves, and every `repeat` while it fires; never on an
evaluation that changes nothing. A window with fewer calls than `min_calls` has no value, and
a rule without a value does not hold (a firing rule resolves when its traffic stops).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from aiops.spec import Alert, window_seconds
from aiops.stats import WindowStats

State = Literal["ok", "pending", "firing"]
EventKind = Literal["firing", "resolved"]
SEVERITY_DEFAULT = "warning"
_QUANTILES = {"p50_latency_ms": 0.50, "p95_latency_ms": 0.95, "p99_latency_ms": 0.99}
# Metrics that have a value without any call (0 calls, 0 USD): min_calls defaults to 0.
_COUNTED = ("calls", "cost_usd", "quota_usage")


# function names, [since, until) -> stats by function name (one without calls may be absent):
# `Store.window_stats`, summed from the rollups.
StatsSource = Callable[[Sequence[str], datetime, datetime], Mapping[str, WindowStats]]


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Today's (UTC) settled usage of a function's daily limits."""

    calls: int = 0
    usd: float = 0.0


@dataclass(frozen=True, kw_only=True)
class DeployedRule:
    """A rule of a function in the database (its applied `alerts:`)."""

    function_id: str
    function: str
    rule: Alert
    access: Mapping[str, Any] = field(default_factory=dict)
    daily_calls: int | None = None
    daily_budget_usd: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.function_id, self.rule.rule_name)


@dataclass(frozen=True, kw_only=True)
class RuleState:
    """What the database remembers of a rule between evaluations."""

    state: State = "ok"
    since: datetime | None = None  # when `state` began
    pending_since: datetime | None = None
    fired_at: datetime | None = None  # when the current firing began
    last_notified_at: datetime | None = None
    value: float | None = None
    evaluated_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Measurement:
    value: float | None  # None: not enough calls (or no limits) to say
    baseline: float | None = None  # the relative form's baseline value
    calls: int = 0

    @property
    def known(self) -> bool:
        return self.value is not None


@dataclass(frozen=True, kw_only=True)
class Event:
    """A notification: a rule started firing (again, with `repeat`), or resolved."""

    id: str
    kind: EventKind
    repeat: bool
    rule: DeployedRule
    at: datetime
    started_at: datetime
    value: float | None
    baseline: float | None

    def payload(self) -> dict[str, Any]:
        """The event as every receiver's message is built from it (and as history keeps it)."""
        r = self.rule.rule
        return {
            "id": self.id, "event": self.kind, "repeat": self.repeat,
            "function": self.rule.function, "function_id": self.rule.function_id,
            "rule": r.rule_name, "metric": r.metric,
            "severity": r.severity or SEVERITY_DEFAULT, "condition": condition_text(r),
            "value": self.value, "baseline_value": self.baseline,
            "window": r.over if r.metric != "quota_usage" else "today (UTC)",
            "baseline": r.baseline, "min_calls": min_calls(r), "for": r.for_,
            "started_at": _iso(self.started_at),
            "resolved_at": _iso(self.at) if self.kind == "resolved" else None,
            "at": _iso(self.at), "summary": summary(self),
        }


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def min_calls(rule: Alert) -> int:
    if rule.min_calls is not None:
        return rule.min_calls
    return 0 if rule.metric in _COUNTED else 1


def condition_text(rule: Alert) -> str:
    """`error_rate > 0.05 over 15m`, `p95_latency_ms > 1.5 × its value over the 7d before`."""
    if rule.ratio_above is not None:
        return (f"{rule.metric} over {rule.over} > {rule.ratio_above:g} × its value over the "
                f"{rule.baseline} before")
    op, limit = (">", rule.above) if rule.above is not None else ("<", rule.below)
    window = "today (UTC)" if rule.metric == "quota_usage" else rule.over
    return f"{rule.metric} {op} {limit:g} over {window}"


def _fmt(value: float | None) -> str:
    return "no value" if value is None else f"{value:.6g}"


def summary(event: Event) -> str:
    r = event.rule.rule
    head = f"[{event.kind.upper()}{' (repeat)' if event.repeat else ''}] " \
           f"{event.rule.function}/{r.rule_name}"
    if event.kind == "resolved":
        return f"{head}: {condition_text(r)} no longer holds ({r.metric} is {_fmt(event.value)})"
    extra = f" (baseline {_fmt(event.baseline)})" if r.baseline else ""
    return f"{head}: {condition_text(r)}; {r.metric} is {_fmt(event.value)}{extra}"


# --- windows and measurements --------------------------------------------------------------


Window = tuple[datetime, datetime]


def windows(rule: Alert, now: datetime) -> tuple[Window | None, Window | None]:
    """The rule's window [now - over, now) and its baseline's, just before it (None where the
    rule has none; quota_usage reads usage counters, not windows)."""
    if rule.metric == "quota_usage" or rule.over is None:
        return None, None
    over = timedelta(seconds=window_seconds(rule.over))
    main = (now - over, now)
    if rule.baseline is None:
        return main, None
    return main, (now - over - timedelta(seconds=window_seconds(rule.baseline)), now - over)


def metric_value(metric: str, stats: WindowStats) -> float | None:
    """The metric over one window's stats; None when it has no value (no call)."""
    if metric == "calls":
        return float(stats.calls)
    if metric == "cost_usd":
        return stats.cost_usd
    if stats.calls <= 0:
        return None
    if metric == "error_rate":
        return stats.error_rate
    return stats.latency_ms(_QUANTILES[metric])


def measure(dr: DeployedRule, main: WindowStats | None, base: WindowStats | None,
            usage: Usage | None) -> Measurement:
    """What the rule reads: the metric over its window (and its baseline), or today's share of
    the daily limits for quota_usage."""
    rule = dr.rule
    least = min_calls(rule)
    if rule.metric == "quota_usage":
        u = usage or Usage()
        shares = []
        if dr.daily_calls is not None:
            shares.append(u.calls / dr.daily_calls if dr.daily_calls else
                          (float("inf") if u.calls else 0.0))
        if dr.daily_budget_usd is not None:
            shares.append(u.usd / dr.daily_budget_usd if dr.daily_budget_usd else
                          (float("inf") if u.usd else 0.0))
        return Measurement(value=max(shares) if shares else None, calls=u.calls)
    m = main or WindowStats()
    if m.calls < least:
        return Measurement(value=None, calls=m.calls)
    value = metric_value(rule.metric, m)
    if rule.baseline is None:
        return Measurement(value=value, calls=m.calls)
    b = base or WindowStats()
    if b.calls < least:
        return Measurement(value=value, baseline=None, calls=m.calls)
    return Measurement(value=value, baseline=metric_value(rule.metric, b), calls=m.calls)


def holds(rule: Alert, m: Measurement) -> bool:
    """Whether the rule's condition holds for this measurement (a missing value never does)."""
    if m.value is None:
        return False
    if rule.above is not None:
        return m.value > rule.above
    if rule.below is not None:
        return m.value < rule.below
    assert rule.ratio_above is not None
    if m.baseline is None or m.baseline <= 0:
        return False  # nothing to compare with: no baseline traffic, or a zero baseline
    return m.value > rule.ratio_above * m.baseline


# --- state transitions ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Step:
    state: RuleState
    event: Event | None = None


def step(dr: DeployedRule, before: RuleState | None, m: Measurement, now: datetime, *,
         repeat_s: int | None, new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> Step:
    """The rule's next state after a measurement at `now`, and the notification it sends.
    `repeat_s`: how often to notify while it fires, unless the rule says (`repeat`)."""
    rule = dr.rule
    if rule.repeat is not None:
        repeat_s = window_seconds(rule.repeat)
    prev = before or RuleState()
    cond = holds(rule, m)
    base: dict[str, Any] = {"value": m.value, "evaluated_at": now}
    hold_s = window_seconds(rule.for_) if rule.for_ else 0

    def event(kind: EventKind, started: datetime, repeat: bool = False) -> Event:
        return Event(id=new_id(), kind=kind, repeat=repeat, rule=dr, at=now,
                     started_at=started, value=m.value, baseline=m.baseline)

    if prev.state == "firing":
        started = prev.fired_at or prev.since or now
        if not cond:
            return Step(state=RuleState(state="ok", since=now, last_notified_at=now, **base),
                        event=event("resolved", started))
        last = prev.last_notified_at or started
        if repeat_s is not None and (now - last).total_seconds() >= repeat_s:
            return Step(state=RuleState(state="firing", since=prev.since, fired_at=started,
                                        last_notified_at=now, **base),
                        event=event("firing", started, repeat=True))
        return Step(state=RuleState(state="firing", since=prev.since, fired_at=started,
                                    last_notified_at=prev.last_notified_at, **base))
    if not cond:
        since = prev.since if prev.state == "ok" and prev.since else now
        return Step(state=RuleState(state="ok", since=since,
                                    last_notified_at=prev.last_notified_at, **base))
    pending_since = prev.pending_since if prev.state == "pending" and prev.pending_since \
        else now
    if (now - pending_since).total_seconds() >= hold_s:
        return Step(state=RuleState(state="firing", since=now, fired_at=now,
                                    last_notified_at=now, **base),
                    event=event("firing", now))
    return Step(state=RuleState(state="pending", since=pending_since,
                                pending_since=pending_since,
                                last_notified_at=prev.last_notified_at, **base))


# --- one evaluation ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Evaluated:
    """One rule after an evaluation: what it measured, its state, its notification."""

    rule: DeployedRule
    measurement: Measurement
    state: RuleState
    event: Event | None


def measure_all(rules: Sequence[DeployedRule], now: datetime, stats: StatsSource,
                usage: Callable[[Sequence[str], date], Mapping[str, Usage]]
                ) -> dict[tuple[str, str], Measurement]:
    """Every rule's measurement at `now`: one stats read per distinct window (for the
    functions whose rules use it), one usage read for the quota rules."""
    wanted: dict[Window, set[str]] = {}
    for dr in rules:
        for w in windows(dr.rule, now):
            if w is not None:
                wanted.setdefault(w, set()).add(dr.function)
    read = {w: stats(sorted(ids), w[0], w[1]) for w, ids in wanted.items()}
    quota_ids = sorted({dr.function_id for dr in rules if dr.rule.metric == "quota_usage"})
    today = usage(quota_ids, now.astimezone(UTC).date()) if quota_ids else {}
    out = {}
    for dr in rules:
        main, base = windows(dr.rule, now)
        out[dr.key] = measure(
            dr, read[main].get(dr.function) if main else None,
            read[base].get(dr.function) if base else None, today.get(dr.function_id))
    return out


def evaluate(rules: Iterable[DeployedRule], measurements: Mapping[tuple[str, str], Measurement],
             states: Mapping[tuple[str, str], RuleState], now: datetime, *,
             default_repeat_s: int | None) -> list[Evaluated]:
    """Every rule's step from its stored state (inside the evaluation's lock)."""
    out = []
    for dr in rules:
        m = measurements[dr.key]
        s = step(dr, states.get(dr.key), m, now, repeat_s=default_repeat_s)
        out.append(Evaluated(rule=dr, measurement=m, state=s.state, event=s.event))
    return out
