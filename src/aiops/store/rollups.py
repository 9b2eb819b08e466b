"""The per-minute rollups of the executions (ai_function_rollups; DESIGN §8): written with the
log rows, read by stats and alerts instead of the log table.

- `add(conn, rows, inserted)`: in the log write's own transaction, the rows that statement
  actually inserted (`inserted`: their ids, from its RETURNING) are added to their rollup
  rows, one upsert per key (`... ON CONFLICT DO UPDATE SET calls = calls + excluded.calls`,
  in key order). A retried write whose first try committed inserts nothing the second time
  (`ON CONFLICT (id) DO NOTHING`), so adds nothing: each execution is counted once.
- `sums(conn, ...)`: the rollup rows of a window, summed in SQL per function and outcome
  (and per version, provider or model, and per time step); the percentiles are read from
  the summed histogram (`aiops.stats.WindowStats`).
- `backfill(conn)`: the table recomputed from every log row (idempotent), under a lock that
  holds log writers back meanwhile.
- `compact(conn, before)`: the per-minute rows before the minute `before` merged into one
  row per hour (at the hour's first minute).

A window is whole minutes: a rollup row counts when its minute starts in [since, until), since
rounded down to its minute. Once compacted, a row stands for its whole hour.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal_column, select, text, tuple_
from sqlalchemy.engine import Connection

from aiops.records import LogRow
from aiops.stats import (
    AMOUNTS,
    BUCKET_COLUMNS,
    DAY,
    HOUR,
    KEY,
    Execution,
    WindowStats,
    at_minute,
    minute_of,
    tally,
)
from aiops.store.engine import as_utc, upsert
from aiops.store.tables import RU, L

BY = ("version", "provider", "model", "day")
_SUMMED = (*AMOUNTS, *BUCKET_COLUMNS)
_BACKFILL_CHUNK = 10_000


@functools.cache
def _upsert(dialect: str) -> Any:
    """The statement that adds deltas to rollup rows, made once per dialect: it names every
    summed column twice, and building it (and its cache key) took longer than running it,
    on every log write."""
    stmt = upsert(dialect, RU)
    return stmt.on_conflict_do_update(
        index_elements=list(KEY),
        set_={c: RU.c[c] + stmt.excluded[c] for c in _SUMMED})


def execution_of_row(row: LogRow) -> Execution:
    return Execution.of(function_id=row.function_id, version=row.version,
                        provider=row.provider, metadata=row.metadata, status=row.status,
                        error=row.error, created_at=row.created_at,
                        execution_time=row.execution_time, input_tokens=row.input_tokens,
                        output_tokens=row.output_tokens, cost_usd=row.cost_usd)


def add(conn: Connection, rows: Sequence[LogRow], inserted: Iterable[uuid.UUID]) -> None:
    """Add the rows of `rows` whose ids are in `inserted` to their rollup rows."""
    ids = {str(i) for i in inserted}
    _add_executions(conn, [execution_of_row(r) for r in rows if r.id in ids])


def _add_executions(conn: Connection, executions: Sequence[Execution]) -> None:
    if not executions:
        return
    deltas = tally(executions)
    for d in deltas:
        d["function_id"] = uuid.UUID(d["function_id"])
    conn.execute(_upsert(conn.dialect.name), deltas)


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Sums:
    """Summed rollups of one function (`function_id`), in one group (`group`: a version,
    provider or model, or None) and one time step (`start`: its first minute, or None)."""

    function_id: str
    group: str | None
    start: int | None
    stats: WindowStats


def window(since: datetime, until: datetime | None) -> tuple[int, int | None]:
    """The minutes [first, end) a window covers (`until` None: open)."""
    first = minute_of(as_utc(since))
    if until is None:
        return first, None
    end = minute_of(as_utc(until))
    # A minute counts when it starts before `until`.
    return first, end if at_minute(end) == as_utc(until) else end + 1


def sums(conn: Connection, function_ids: Sequence[str] | None, since: datetime,
         until: datetime | None = None, *, by: str | None = None,
         step_minutes: int | None = None) -> list[Sums]:
    """The rollups of the window [since, until), summed per function (only `function_ids`
    when given), per `by` (one of BY; `day` is a step of a day) and per step of
    `step_minutes`, in SQL: one row per function, group, step and outcome, folded here."""
    if by == "day":
        by, step_minutes = None, DAY
    first, end = window(since, until)
    columns: list[Any] = [RU.c.function_id, RU.c.outcome]
    if by is not None:
        columns.append(RU.c[by])
    if step_minutes:
        columns.append((RU.c.minute - RU.c.minute % step_minutes).label("start"))
    q = select(*columns, *(func.sum(RU.c[c]).label(c) for c in _SUMMED)).where(
        RU.c.minute >= first)
    if end is not None:
        q = q.where(RU.c.minute < end)
    if function_ids is not None:
        q = q.where(RU.c.function_id.in_([uuid.UUID(i) for i in function_ids]))
    q = q.group_by(*columns)
    folded: dict[tuple[str, str | None, int | None], WindowStats] = {}
    for r in conn.execute(q):
        m = r._mapping
        key = (str(m["function_id"]), m[by] if by else None,
               int(m["start"]) if step_minutes else None)
        stats = WindowStats.of_sums(m["outcome"], m["calls"], m["input_tokens"],
                                    m["output_tokens"], m["cost_nusd"],
                                    (m[b] for b in BUCKET_COLUMNS))
        folded[key] = folded[key] + stats if key in folded else stats
    return [Sums(function_id=k[0], group=k[1], start=k[2], stats=v)
            for k, v in sorted(folded.items(), key=lambda kv: (kv[0][0], kv[0][1] or "",
                                                                kv[0][2] or 0))]


# --- backfill and compaction ----------------------------------------------------------------


def _model_expr(dialect: str) -> Any:
    if dialect == "postgresql":
        return literal_column("ai_function_logs.metadata -> 'model'")
    return literal_column("CASE WHEN json_type(ai_function_logs.metadata, '$.model') = 'text' "
                "THEN json_extract(ai_function_logs.metadata, '$.model') END")


def backfill(conn: Connection) -> int:
    """Recompute every rollup row from the log rows (idempotent); the number of executions
    counted. Log writers wait meanwhile (PostgreSQL: a SHARE lock on the log table; SQLite:
    the write lock the transaction holds)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE ai_function_logs IN SHARE MODE"))
    conn.execute(delete(RU))
    model = _model_expr(conn.dialect.name).label("model")
    cols = (L.c.id, L.c.function_id, L.c.version, L.c.provider, model, L.c.status, L.c.error,
            L.c.created_at, L.c.execution_time, L.c.input_tokens, L.c.output_tokens,
            L.c.cost_usd)
    counted = 0
    after: tuple[Any, Any] | None = None
    while True:
        q = select(*cols).order_by(L.c.created_at, L.c.id).limit(_BACKFILL_CHUNK)
        if after is not None:
            q = q.where(tuple_(L.c.created_at, L.c.id) > tuple_(*after))
        chunk = conn.execute(q).all()
        if not chunk:
            return counted
        _add_executions(conn, [Execution.of(
            function_id=str(r.function_id), version=r.version, provider=r.provider,
            metadata={"model": r.model}, status=r.status, error=r.error,
            created_at=as_utc(r.created_at), execution_time=r.execution_time,
            input_tokens=r.input_tokens, output_tokens=r.output_tokens,
            cost_usd=r.cost_usd) for r in chunk])
        counted += len(chunk)
        after = (chunk[-1].created_at, chunk[-1].id)


def oldest_minute_row(conn: Connection, before: int) -> int | None:
    """The first minute before `before` that holds a row not on an hour (None: none)."""
    found = conn.execute(select(func.min(RU.c.minute)).where(
        RU.c.minute < before, RU.c.minute % HOUR != 0)).scalar()
    return None if found is None else int(found)


def compact_day(conn: Connection, start: int, before: int) -> int:
    """Merge the per-minute rows of [start, min(start + a day, before)) into hourly rows (at
    each hour's first minute); the number of rows merged. The rows are deleted and their
    sums re-added from what the DELETE returned, so a row written meanwhile is either
    merged or left for the next run, never lost."""
    end = min(start + DAY, before - before % HOUR)  # whole hours only
    gone = conn.execute(delete(RU).where(RU.c.minute >= start, RU.c.minute < end,
                                         RU.c.minute % HOUR != 0)
                        .returning(*(RU.c[c] for c in (*KEY, *_SUMMED)))).all()
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in gone:
        m = dict(r._mapping)
        m["minute"] = m["minute"] - m["minute"] % HOUR
        key = tuple(m[k] for k in KEY)
        if key in merged:
            for c in _SUMMED:
                merged[key][c] += m[c]
        else:
            merged[key] = m
    if merged:
        conn.execute(_upsert(conn.dialect.name), [merged[k] for k in sorted(merged)])
    return len(gone)
