"""Execution statistics as the rollups hold them (DESIGN §8): plain records and arithmetic,
no SQL. `aiops.store.rollups` writes and reads them; `aiops stats`, the API and alerts show
and judge them.

- `Execution`: what one log row adds to its rollup row: its key (function, version,
  provider, model, outcome, minute) and its amounts.
- `tally(executions)`: the rollup rows those executions add, one per key, in key order (so
  that concurrent writers lock the rows they update in the same order: no deadlock).
- `WindowStats`: the sums over a window (calls, errors by kind, tokens, cost, the latency
  histogram) and what is read from them (error rate, p50/p95/p99 from the buckets:
  `aiops.latency`, within its ERROR_BOUND); `Folder`: many summed rows of one key added up
  into one.

Cost is summed in whole nano-dollars (`nano_usd`), integers: a sum then does not depend on
the order the rows are added in, so that stats agree with the raw log rows exactly, on
either database, however the rows were grouped.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops import latency

OK = "ok"
ERROR = "error"  # the outcome of an error row whose error names no type
KEY_LENGTHS = {"version": 100, "provider": 100, "model": 200, "outcome": 100}
NANO = 10**9
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = 60  # minutes
DAY = 1440
BY = ("version", "provider", "model", "day")  # what stats can be grouped by


def nano_usd(cost: float | None) -> int:
    """A cost in whole nano-dollars (None, NaN and infinities: 0)."""
    if cost is None or not math.isfinite(cost):
        return 0
    return round(cost * NANO)


def minute_of(when: datetime) -> int:
    """Minutes since the Unix epoch, UTC, of the minute `when` falls in (naive means UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int((when - EPOCH).total_seconds() // 60)


def at_minute(minute: int) -> datetime:
    return EPOCH + timedelta(minutes=minute)


def outcome_of(status: str, error: Any) -> str:
    """`ok`, or the kind of error (its `type`, e.g. ProviderError), else `error`."""
    if status == OK:
        return OK
    kind = error.get("type") if isinstance(error, dict) else None
    if isinstance(kind, str) and kind and kind != OK:
        return kind[:KEY_LENGTHS["outcome"]]
    return ERROR


def model_of(metadata: Any) -> str:
    model = metadata.get("model") if isinstance(metadata, dict) else None
    return model[:KEY_LENGTHS["model"]] if isinstance(model, str) else ""


@dataclass(frozen=True, kw_only=True)
class Subject:
    """A function whose stats are asked for: its access lists (who may view them), its
    limits, and what its usage counters say of today (UTC)."""

    id: str
    name: str
    access: Mapping[str, Any]
    limits: Mapping[str, Any]
    calls_used: int
    usd_spent: float


@dataclass(frozen=True, kw_only=True)
class Execution:
    """One execution as its rollup row counts it; `latency_ms` None: not in the histogram."""

    function_id: str
    version: str
    provider: str
    model: str
    outcome: str
    minute: int
    latency_ms: float | None
    input_tokens: int
    output_tokens: int
    cost_nusd: int

    @classmethod
    def of(cls, *, function_id: str, version: str, provider: str | None, metadata: Any,
           status: str, error: Any, created_at: datetime, execution_time: float | None,
           input_tokens: int | None, output_tokens: int | None,
           cost_usd: float | None) -> Execution:
        """From a log row's columns (the write path and the backfill both come here)."""
        return cls(function_id=function_id, version=version[:KEY_LENGTHS["version"]],
                   provider=(provider or "")[:KEY_LENGTHS["provider"]],
                   model=model_of(metadata), outcome=outcome_of(status, error),
                   minute=minute_of(created_at),
                   latency_ms=execution_time if execution_time is not None
                   and math.isfinite(execution_time) else None,
                   input_tokens=input_tokens or 0, output_tokens=output_tokens or 0,
                   cost_nusd=nano_usd(cost_usd))

    @property
    def key(self) -> tuple[str, int, str, str, str, str]:
        return (self.function_id, self.minute, self.version, self.provider, self.model,
                self.outcome)


KEY = ("function_id", "minute", "version", "provider", "model", "outcome")
AMOUNTS = ("calls", "input_tokens", "output_tokens", "cost_nusd")
BUCKET_COLUMNS = tuple(f"b{i}" for i in range(latency.BUCKETS))


def tally(executions: Iterable[Execution], grain: int = 1) -> list[dict[str, Any]]:
    """The rollup rows `executions` add: one dict per key (KEY, AMOUNTS, BUCKET_COLUMNS), in
    key order; `grain`: minutes a row stands for (60: hourly rows, at the hour's first
    minute)."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for ex in executions:
        key = ex.key if grain == 1 else (ex.key[0], ex.minute - ex.minute % grain, *ex.key[2:])
        row = rows.get(key)
        if row is None:
            row = rows[key] = {**dict(zip(KEY, key, strict=True)),
                                  **dict.fromkeys(AMOUNTS, 0),
                                  **dict.fromkeys(BUCKET_COLUMNS, 0)}
        row["calls"] += 1
        row["input_tokens"] += ex.input_tokens
        row["output_tokens"] += ex.output_tokens
        row["cost_nusd"] += ex.cost_nusd
        if ex.latency_ms is not None:
            row[BUCKET_COLUMNS[latency.bucket_of(ex.latency_ms / 1000)]] += 1
    return [rows[k] for k in sorted(rows)]


def _added(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Two histograms added bucket by bucket (map: a page folds thousands of them)."""
    if len(a) != len(b):
        raise ValueError(f"histograms of {len(a)} and {len(b)} buckets")
    return tuple(map(operator.add, a, b))


@dataclass(frozen=True, kw_only=True)
class WindowStats:
    """Sums over a window, and what is read from them. `histogram`: latency.BUCKETS counts
    (executions without a latency are not in it); `errors_by_kind`: outcome -> calls, for
    every outcome but ok."""

    calls: int = 0
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nusd: int = 0
    histogram: tuple[int, ...] = (0,) * latency.BUCKETS

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    @property
    def error_rate(self) -> float | None:
        """errors / calls; None without calls."""
        return self.errors / self.calls if self.calls else None

    @property
    def cost_usd(self) -> float:
        return self.cost_nusd / NANO

    def latency_ms(self, q: float) -> float | None:
        """The `q` quantile of the latencies, in ms, read from the buckets (None: none)."""
        seconds = latency.percentile(self.histogram, q)
        return None if seconds is None else round(seconds * 1000, 3)

    @property
    def p50_ms(self) -> float | None:
        return self.latency_ms(0.50)

    @property
    def p95_ms(self) -> float | None:
        return self.latency_ms(0.95)

    @property
    def p99_ms(self) -> float | None:
        return self.latency_ms(0.99)

    def __add__(self, other: WindowStats) -> WindowStats:
        kinds = dict(self.errors_by_kind)
        for kind, n in other.errors_by_kind.items():
            kinds[kind] = kinds.get(kind, 0) + n
        return WindowStats(calls=self.calls + other.calls, errors_by_kind=kinds,
                           input_tokens=self.input_tokens + other.input_tokens,
                           output_tokens=self.output_tokens + other.output_tokens,
                           cost_nusd=self.cost_nusd + other.cost_nusd,
                           histogram=_added(self.histogram, other.histogram))

    def as_dict(self) -> dict[str, Any]:
        """What `aiops stats --json` and the API show."""
        return {"calls": self.calls, "errors": self.errors,
                "error_rate": None if self.error_rate is None else round(self.error_rate, 6),
                "errors_by_kind": dict(sorted(self.errors_by_kind.items())),
                "p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "p99_ms": self.p99_ms,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost_usd": round(self.cost_usd, 9)}


class Folder:
    """Summed rollup rows of one key added up as plain integers, then made one WindowStats
    (`stats()`): a page folds thousands of rows, and a WindowStats per row and an addition
    of two per row cost more than the reads."""

    __slots__ = ("calls", "cost_nusd", "histogram", "input_tokens", "kinds", "output_tokens")

    def __init__(self) -> None:
        self.calls = self.input_tokens = self.output_tokens = self.cost_nusd = 0
        self.kinds: dict[str, int] = {}
        self.histogram: list[int] = [0] * latency.BUCKETS

    def add(self, outcome: str, calls: int, input_tokens: int, output_tokens: int,
            cost_nusd: int, histogram: Iterable[int] | None = None) -> None:
        """Add summed rows of one outcome (`histogram` None: without latency buckets)."""
        calls = int(calls)
        self.calls += calls
        if outcome != OK:
            self.kinds[outcome] = self.kinds.get(outcome, 0) + calls
        self.input_tokens += int(input_tokens)
        self.output_tokens += int(output_tokens)
        self.cost_nusd += int(cost_nusd)
        if histogram is not None:
            counts = tuple(map(int, histogram))
            if len(counts) != latency.BUCKETS:
                raise ValueError(f"a histogram of {len(counts)} buckets, not "
                                 f"{latency.BUCKETS}")
            self.histogram = list(map(operator.add, self.histogram, counts))

    def add_stats(self, s: WindowStats) -> None:
        """Add a WindowStats (a histogram of zeros, as a read without latency has, costs no
        addition)."""
        self.calls += s.calls
        for kind, n in s.errors_by_kind.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n
        self.input_tokens += s.input_tokens
        self.output_tokens += s.output_tokens
        self.cost_nusd += s.cost_nusd
        if any(s.histogram):
            self.histogram = list(map(operator.add, self.histogram, s.histogram))

    def stats(self) -> WindowStats:
        return WindowStats(calls=self.calls, errors_by_kind=dict(self.kinds),
                           input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                           cost_nusd=self.cost_nusd, histogram=tuple(self.histogram))


def summed(stats: Iterable[WindowStats]) -> WindowStats:
    """WindowStats added up, as plain integers (`Folder`): a thousand functions' totals
    added pairwise would make a thousand WindowStats on the way."""
    folder = Folder()
    for s in stats:
        folder.add_stats(s)
    return folder.stats()
