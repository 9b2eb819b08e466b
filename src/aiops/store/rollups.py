"""The rollups of the executions (DESIGN §8), per minute (ai_function_rollups) and per hour
(ai_function_rollups_hourly): written with the log rows, read by stats and alerts instead of
the log table. Two narrower tiers beside them serve the monitoring page of every function:
the same summed over the functions (`ACROSS`: ai_rollups_across and its hourly table, keyed
by provider, model and outcome, no version, in SHARDS shards per key that readers sum), and
each function's amounts per hour alone, errors among them (`TOTALS`:
ai_function_totals_hourly, its edges read from the per-minute rows): what ranks the top
lists (`top`) and draws the sparklines (`calls_per_step`).

- `add(conn, rows, inserted)`: in the log write's own transaction, the rows that statement
  actually inserted (`inserted`: their ids, from its RETURNING) are added to their rows in
  every table (`_WRITES`), one upsert per key (`... ON CONFLICT DO UPDATE SET calls = calls +
  excluded.calls`, in key order; on PostgreSQL every table's in one statement, one round
  trip, whose WITH
  clauses `pg_with_rollups` gives: a log insert of a few rows puts its own before them,
  `aiops.store.logrows`). A retried write whose first try committed inserts nothing the
  second time (`ON CONFLICT (id) DO NOTHING`), so adds nothing: each execution is counted
  once.
- `sums(conn, ...)`: the rollup rows of a window, summed in SQL per function and outcome
  (and per version, provider or model, and per time step): its whole hours from the hourly
  rows, its ragged edges from the per-minute rows (a 24-hour window reads at most 24 + 120
  rows per key, whatever the number of executions); the percentiles are read from the
  summed histogram (`aiops.stats.WindowStats`).
- `cells(conn, ...)`: the same summed over the functions, per version, provider, model and
  time step, in one statement (the monitoring page; of every function from the across
  tier, without versions).
- `backfill(conn)`: every table recomputed from every log row (idempotent), under a lock
  that holds log writers back meanwhile.
- `compact(conn, before)`: the per-minute rows (of both tiers that have them) before the
  hour of `before` deleted (the hourly rows hold their sums), and the mark
  `compacted_before` moved there.
- `top(conn, ...)`: the functions of most cost and of most errors over a window, ranked in
  SQL (the monitoring page's top lists).

A window is whole minutes: a rollup row counts when its minute starts in [since, until), since
rounded down to its minute. An edge before the compaction mark widens to its whole hour.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    union,
    union_all,
)
from sqlalchemy.engine import Connection

from aiops import fastjson
from aiops.records import LogRow
from aiops.stats import (
    AMOUNTS,
    BUCKET_COLUMNS,
    BY,
    DAY,
    HOUR,
    KEY,
    OK,
    Execution,
    Folder,
    Subject,
    WindowStats,
    at_minute,
    minute_of,
    tally,
)
from aiops.store.engine import as_utc, upsert
from aiops.store.tables import RH, RM, RU, TH, XH, XM, C, F, L

_SUMMED = (*AMOUNTS, *BUCKET_COLUMNS)
_BACKFILL_CHUNK = 10_000
SHARDS = 16  # the across rows of a key: writers of different functions seldom share one


@dataclass(frozen=True)
class Tier:
    """A pair of rollup tables (`minutes`, `hours`), what keys them and what they sum: a
    window's whole hours are read from `hours`, its edges from `minutes`."""

    minutes: Table
    hours: Table
    key: tuple[str, ...]
    summed: tuple[str, ...]


FULL = Tier(RU, RH, KEY, _SUMMED)  # per function, version, provider, model and outcome
# Summed over the functions (in shards: readers sum them), without the version.
ACROSS = Tier(XM, XH, ("minute", "shard", "provider", "model", "outcome"), _SUMMED)
# Each function's amounts alone, errors among them; its edges are read from the full minutes
# (their errors: the calls of outcomes but ok).
TOTALS = Tier(RU, TH, ("function_id", "minute"),
              ("calls", "errors", "input_tokens", "output_tokens", "cost_nusd"))
_TABLES = {t.name: t for t in (RU, RH, XM, XH, TH)}
# What a log write adds to: (table, key, summed, grain), in the order every writer takes
# their rows' locks.
_WRITES = ((RU, KEY, _SUMMED, 1), (RH, KEY, _SUMMED, HOUR),
           (XM, ACROSS.key, _SUMMED, 1), (XH, ACROSS.key, _SUMMED, HOUR),
           (TH, TOTALS.key, TOTALS.summed, HOUR))


def _upsert_sql(table: Table, key: tuple[str, ...], summed: tuple[str, ...], rows: str
                ) -> str:
    """INSERT INTO table (key, summed) `rows` ON CONFLICT (key) DO UPDATE SET each sum = sum
    + excluded: every writer's upsert of a rollup table, on both dialects."""
    sums = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in summed)
    return (f"INSERT INTO {table.name} ({', '.join((*key, *summed))}) {rows} "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sums}")


_SQLITE_UPSERTS: dict[str, Any] = {}  # built once per table


def _sqlite_upsert(table: Table, key: tuple[str, ...], summed: tuple[str, ...]) -> Any:
    """SQLite's upsert of `table`'s rows, one set of parameters per row: as text, whose
    building and compiling cost next to nothing, where the same as an Insert construct (its
    62 SET clauses built, compiled, and a cache key computed at each execution) was most of
    a single run's log write."""
    found = _SQLITE_UPSERTS.get(table.name)
    if found is None:
        values = ", ".join(f":{c}" for c in (*key, *summed))
        found = text(_upsert_sql(table, key, summed, f"VALUES ({values})"))
        if "function_id" in key:  # stored as the Uuid type stores it
            found = found.bindparams(bindparam("function_id", type_=table.c.function_id.type))
        _SQLITE_UPSERTS[table.name] = found
    return found


def _deltas(executions: Sequence[Execution]) -> list[list[dict[str, Any]]]:
    """The rows `executions` add to each table of `_WRITES`, each in key order: the full
    rows tallied per minute and per hour, the others summed from them."""
    minutes, hours = tally(executions), tally(executions, HOUR)
    out = []
    for _table, key, summed, grain in _WRITES:
        source = minutes if grain == 1 else hours
        out.append(source if key == KEY else _regrouped(source, key, summed))
    return out


def _regrouped(rows: Sequence[dict[str, Any]], key: tuple[str, ...],
               summed: tuple[str, ...]) -> list[dict[str, Any]]:
    """`rows` summed per `key`, in key order (`shard`: the function id's last hex digit's,
    uniform over uuid4s; `errors`: the calls of an outcome but ok)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        k = tuple(int(r["function_id"][-1], 16) % SHARDS if c == "shard" else r[c]
                  for c in key)
        amounts = {c: (0 if r["outcome"] == OK else r["calls"]) if c == "errors" else r[c]
                   for c in summed}
        found = out.get(k)
        if found is None:
            out[k] = {**dict(zip(key, k, strict=True)), **amounts}
        else:
            for c in summed:
                found[c] += amounts[c]
    return [out[k] for k in sorted(out)]


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
    if conn.dialect.name == "postgresql":  # every table in one statement: one round trip
        conn.execute(_pg_upserts(), pg_params(executions))
        return
    for (table, key, summed, _grain), rows in zip(_WRITES, _deltas(executions), strict=True):
        if "function_id" in key:
            rows = [{**r, "function_id": uuid.UUID(r["function_id"])} for r in rows]
        conn.execute(_sqlite_upsert(table, key, summed), rows)


def pg_params(executions: Sequence[Execution]) -> dict[str, str]:
    """The parameters of PostgreSQL's rollup upserts (`pg_with_rollups`): each table's rows,
    in key order, as a JSON array of dicts (`r0` ... in the order of `_WRITES`)."""
    return {f"r{i}": fastjson.dumps(rows).decode()
            for i, rows in enumerate(_deltas(executions))}


def pg_with_rollups(first: str = "", guard: str = "") -> str:
    """PostgreSQL's upserts of every rollup table's rows (parameters: `pg_params`), the
    same as SQLite's whatever the number of rows, in one statement of WITH clauses:
    `first` before them (a log insert whose rollups these are), `guard` a condition on
    adding them at all. Every log writer's statement has these clauses in this order, so
    that they take the rows' locks in the same order."""

    def clause(i: int, table: Table, key: tuple[str, ...], summed: tuple[str, ...]) -> str:
        columns = ", ".join((*key, *summed))
        return f"r{i} AS (" + _upsert_sql(
            table, key, summed, f"SELECT {columns} FROM jsonb_populate_recordset("
            f"NULL::{table.name}, CAST(:r{i} AS jsonb)){f' WHERE {guard}' if guard else ''}") + ")"

    return "WITH " + ", ".join([*([first] if first else []), *(
        clause(i, table, key, summed) for i, (table, key, summed, _) in enumerate(_WRITES))])


_PG_UPSERTS: list[Any] = []  # built once


def _pg_upserts() -> Any:
    if not _PG_UPSERTS:
        _PG_UPSERTS.append(text(f"{pg_with_rollups()} SELECT 1"))
    return _PG_UPSERTS[0]


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


COMPACTED = "compacted_before"  # the mark: per-minute rows before it were deleted


def compacted_before(conn: Connection) -> int:
    found = conn.execute(select(RM.c.minute).where(RM.c.name == COMPACTED)).scalar()
    return 0 if found is None else int(found)


def _parts(first: int, end: int | None, mark: int, step: int | None, tier: Tier = FULL
           ) -> list[tuple[Table, int, int | None]]:
    """Which rows of `tier` a window reads: (table, first minute, end minute). Whole hours
    come from the hourly rows, the ragged edges from the per-minute rows; an edge before the
    compaction mark (its minutes are gone) widens to its whole hour, and so does the whole
    window for a step finer than an hour (only minutes can be cut finer)."""
    if first < mark:
        first -= first % HOUR
    if end is not None and end < mark and end % HOUR:
        end += HOUR - end % HOUR
    if step is not None and step % HOUR:
        return [(tier.minutes, first, end)]
    h_first = first + (-first) % HOUR
    h_end = None if end is None else end - end % HOUR
    if h_end is not None and h_first >= h_end:
        return [(tier.minutes, first, end)]
    parts: list[tuple[Table, int, int | None]] = [(tier.hours, h_first, h_end)]
    if first < h_first:
        parts.append((tier.minutes, first, h_first))
    if end is not None and h_end is not None and h_end < end:
        parts.append((tier.minutes, h_end, end))
    return parts


_QUERIES: dict[tuple[Any, ...], Any] = {}  # built once: SQLAlchemy caches their compiled SQL


def _query(parts: tuple[tuple[str, bool], ...], keys: tuple[str, ...], step: int | None,
           some: bool, across: bool = False, buckets: bool = True) -> Any:
    """One statement for a window's parts (table name, bounded above), each summed per
    function, `keys` (columns of the rollups: version, provider, model), step and outcome,
    with bound parameters lo_i / hi_i and `ids` (expanding) when `some`; the parts' sums
    UNION ALL added, so that each function, keys, step and outcome comes back once.
    `across`: summed over the functions (no function_id); `buckets` False: the amounts
    alone."""
    cache_key = (parts, keys, step, some, across, buckets)
    found = _QUERIES.get(cache_key)
    if found is not None:
        return found
    summed = _SUMMED if buckets else AMOUNTS
    selects = []
    for i, (name, bounded) in enumerate(parts):
        table = _TABLES[name]
        grouped = [table.c.outcome, *(table.c[k] for k in keys)]
        if not across:
            grouped.insert(0, table.c.function_id)
        if step:
            grouped.append((table.c.minute - table.c.minute % step).label("start"))
        q = select(*grouped, *(func.sum(table.c[c]).label(c) for c in summed)).where(
            table.c.minute >= bindparam(f"lo_{i}"))
        if bounded:
            q = q.where(table.c.minute < bindparam(f"hi_{i}"))
        if some:
            q = q.where(table.c.function_id.in_(bindparam("ids", expanding=True)))
        selects.append(q.group_by(*grouped))
    if len(selects) == 1:
        statement = selects[0]
    else:  # each part summed apart (in parallel), then the parts' sums added
        rows = union_all(*selects).subquery()
        keyed = [c for c in rows.c if c.name not in summed]
        statement = select(*keyed, *(func.sum(rows.c[c]).label(c) for c in summed)).group_by(
            *keyed)
    _QUERIES[cache_key] = statement
    return statement


_Key = tuple[str, tuple[str, ...], int | None]  # function_id, the keys' values, step start


def _shape(parts: list[tuple[Table, int, int | None]]) -> tuple[tuple[str, bool], ...]:
    """What `_query` builds a window's statement from: each part's table, bounded above."""
    return tuple((t.name, hi is not None) for t, _, hi in parts)


def _params(parts: list[tuple[Table, int, int | None]], function_ids: Sequence[str] | None
            ) -> dict[str, Any]:
    """The bound parameters of `_query`'s statement for a window's parts."""
    params: dict[str, Any] = {}
    for i, (_, lo, hi) in enumerate(parts):
        params[f"lo_{i}"] = lo
        if hi is not None:
            params[f"hi_{i}"] = hi
    if function_ids is not None:
        params["ids"] = [uuid.UUID(i) for i in function_ids]
    return params


def _summed(conn: Connection, function_ids: Sequence[str] | None, since: datetime,
            until: datetime | None, keys: tuple[str, ...], step_minutes: int | None,
            across: bool, buckets: bool) -> dict[_Key, WindowStats]:
    """The rollups of the window summed per function (or `across` them), `keys` and step,
    in one statement: whole hours from the hourly rows, the edges from the per-minute ones;
    the outcomes of each are folded here (a row per function, keys, step and outcome).
    Across every function, the across tier is read (a few rows per step, whatever the
    number of functions; without versions)."""
    first, end = window(since, until)
    tier = FULL
    if across and function_ids is None:
        if "version" in keys:
            raise ValueError("the across rollups have no versions")
        tier = ACROSS
    parts = _parts(first, end, compacted_before(conn), step_minutes, tier)
    statement = _query(_shape(parts), keys, step_minutes, function_ids is not None, across,
                       buckets)
    params = _params(parts, function_ids)
    folded: dict[_Key, Folder] = {}
    n = len(BUCKET_COLUMNS)  # the last columns, when read: _query sums them last
    for r in conn.execute(statement, params):
        m = r._mapping
        key = ("" if across else str(m["function_id"]), tuple(m[k] for k in keys),
               int(m["start"]) if step_minutes else None)
        folder = folded.get(key)
        if folder is None:
            folder = folded[key] = Folder()
        folder.add(m["outcome"], m["calls"], m["input_tokens"], m["output_tokens"],
                   m["cost_nusd"], r[-n:] if buckets else None)
    return {key: folder.stats() for key, folder in folded.items()}


def sums(conn: Connection, function_ids: Sequence[str] | None, since: datetime,
         until: datetime | None = None, *, by: str | None = None,
         step_minutes: int | None = None, buckets: bool = True) -> list[Sums]:
    """The rollups of the window [since, until), summed per function (only `function_ids`
    when given), per `by` (one of BY; `day` is a step of a day) and per step of
    `step_minutes`, in SQL. `buckets` False: without the latency histogram (no percentiles;
    a fraction of the columns to sum and fold)."""
    if by == "day":
        by, step_minutes = None, DAY
    if by is not None and by not in BY:
        raise ValueError(f"by {by!r} is not one of {BY}")
    folded = _summed(conn, function_ids, since, until, () if by is None else (by,),
                     step_minutes, False, buckets)
    return [Sums(function_id=k[0], group=k[1][0] if k[1] else None, start=k[2], stats=v)
            for k, v in sorted(folded.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                kv[0][2] or 0))]


@dataclass(frozen=True, kw_only=True)
class Ranked:
    """A function of a top list, and its totals over the window (no latency)."""

    function_id: str
    name: str
    stats: WindowStats


def top(conn: Connection, function_ids: Sequence[str] | None, since: datetime,
        until: datetime, n: int) -> tuple[list[Ranked], list[Ranked]]:
    """The `n` functions (only `function_ids` when given) of most cost and the `n` of most
    errors over the window, ties by name, with their totals (no latency), in one statement:
    ranked from the totals tier (a row per function and hour), then the chosen functions'
    rows of the full rollups summed per outcome. Only their rows leave the database, not
    every function's (the monitoring page's top lists: at 1,000 functions the full hourly
    rows of 24 hours are 110,000). Functions without cost, or without errors, are not
    ranked in that list."""
    first, end = window(since, until)
    parts = _parts(first, end, compacted_before(conn), None, TOTALS)
    cache_key = ("top", _shape(parts), function_ids is not None, n)
    statement = _QUERIES.get(cache_key)
    if statement is None:
        statement = _QUERIES[cache_key] = _top_statement(_shape(parts), function_ids is not None,
                                                         n)
    folded: dict[str, Folder] = {}
    names: dict[str, str] = {}
    for r in conn.execute(statement, _params(parts, function_ids)):
        fid = str(r.function_id)
        folder = folded.get(fid)
        if folder is None:
            folder = folded[fid] = Folder()
            names[fid] = r.name
        folder.add(r.outcome, r.calls, r.input_tokens, r.output_tokens, r.cost_nusd)
    ranked = [Ranked(function_id=fid, name=names[fid], stats=f.stats())
              for fid, f in folded.items()]
    by_cost = sorted((r for r in ranked if r.stats.cost_nusd), key=lambda r: (
        -r.stats.cost_nusd, r.name))
    by_errors = sorted((r for r in ranked if r.stats.errors), key=lambda r: (
        -r.stats.errors, r.name))
    return by_cost[:n], by_errors[:n]


def _top_statement(shape: tuple[tuple[str, bool], ...], some: bool, n: int) -> Any:
    """`top`'s statement for a window's parts of the totals tier (`shape`): the whole hours
    ranked from its hourly rows, the edges from the per-minute rollups; the chosen
    functions' totals from the full tier's parts of the same bounds."""
    def bounded(q: Any, table: Table, i: int, hi: bool) -> Any:
        q = q.where(table.c.minute >= bindparam(f"lo_{i}"))
        return q.where(table.c.minute < bindparam(f"hi_{i}")) if hi else q

    ranking = []
    for i, (name, hi) in enumerate(shape):
        table = _TABLES[name]
        errors = table.c.errors if table is TH else case((table.c.outcome != OK, table.c.calls),
                                                         else_=0)
        q = bounded(select(table.c.function_id, errors.label("errors"),
                           table.c.cost_nusd.label("cost")), table, i, hi)
        if some:
            q = q.where(table.c.function_id.in_(bindparam("ids", expanding=True)))
        ranking.append(q)
    rows = union_all(*ranking).subquery() if len(ranking) > 1 else ranking[0].subquery()
    fn = (select(rows.c.function_id, F.c.name, func.sum(rows.c.cost).label("cost"),
                 func.sum(rows.c.errors).label("errors"))
          .join_from(rows, F, F.c.id == rows.c.function_id)
          .group_by(rows.c.function_id, F.c.name).cte("fn"))
    chosen = union(*(select(ranked.c.function_id) for ranked in (
        select(fn.c.function_id).where(amount > 0).order_by(amount.desc(), fn.c.name)
        .limit(n).subquery() for amount in (fn.c.cost, fn.c.errors)))).cte("chosen")
    exact = []
    for i, (name, hi) in enumerate(shape):
        table = RH if name == TH.name else _TABLES[name]
        grouped = (table.c.function_id, table.c.outcome)
        exact.append(bounded(select(*grouped, *(func.sum(table.c[c]).label(c)
                                                for c in AMOUNTS)), table, i, hi)
                     .where(table.c.function_id.in_(select(chosen.c.function_id)))
                     .group_by(*grouped))
    per = union_all(*exact).subquery() if len(exact) > 1 else exact[0].subquery()
    return (select(per.c.function_id, per.c.outcome, F.c.name,
                   *(func.sum(per.c[c]).label(c) for c in AMOUNTS))
            .join_from(per, F, F.c.id == per.c.function_id)
            .group_by(per.c.function_id, per.c.outcome, F.c.name))


@dataclass(frozen=True, kw_only=True)
class Cell:
    """Summed rollups of a set of functions in one version, provider, model and time step
    (`start`: its first minute): every breakdown of them is a sum of cells."""

    version: str
    provider: str
    model: str
    start: int
    stats: WindowStats


def cells(conn: Connection, function_ids: Sequence[str] | None, since: datetime,
          until: datetime, step_minutes: int) -> list[Cell]:
    """The rollups of the window summed over the functions (only `function_ids` when
    given) per version, provider, model and step of `step_minutes`, in one statement: what
    the monitoring page charts and breaks down. Of every function (`function_ids` None), from
    the across rollups, a few rows per step whatever the number of functions, and without
    versions (each cell's version is ''): a version is one function's."""
    keys = ("provider", "model") if function_ids is None else ("version", "provider", "model")
    folded = _summed(conn, function_ids, since, until, keys, step_minutes, True, True)
    return [Cell(version="" if len(keys) == 2 else k[1][0], provider=k[1][-2],
                 model=k[1][-1], start=k[2] or 0, stats=v)
            for k, v in sorted(folded.items(), key=lambda kv: (kv[0][2] or 0, kv[0][1]))]


def calls_per_step(conn: Connection, function_ids: Sequence[str], since: datetime,
                   until: datetime, step_minutes: int) -> dict[str, dict[int, int]]:
    """Calls alone per function and step of the window (first minute of the step -> calls):
    what a sparkline needs, from the totals tier (no latency buckets, no keys: a row per
    function, hour and outcome). Steps without calls are absent."""
    if not function_ids:
        return {}
    first, end = window(since, until)
    ids = [uuid.UUID(i) for i in function_ids]
    selects = []
    for table, lo, hi in _parts(first, end, compacted_before(conn), step_minutes, TOTALS):
        start = (table.c.minute - table.c.minute % step_minutes).label("start")
        q = select(table.c.function_id, start, func.sum(table.c.calls).label("calls")).where(
            table.c.minute >= lo, table.c.function_id.in_(ids))
        if hi is not None:
            q = q.where(table.c.minute < hi)
        selects.append(q.group_by(table.c.function_id, start))
    out: dict[str, dict[int, int]] = {}
    for r in conn.execute(selects[0] if len(selects) == 1 else union_all(*selects)):
        steps = out.setdefault(str(r.function_id), {})
        steps[int(r.start)] = steps.get(int(r.start), 0) + int(r.calls)
    return out


def subjects(conn: Connection, ref: str | None, day: date,
             ids: Sequence[str] | None = None) -> list[Subject]:
    """The functions (the one whose id or name is `ref`; every one for None; only `ids` when
    given) with their access lists, limits and usage counters of `day`, in one query."""
    q = (select(F.c.id, F.c.name, F.c.access, F.c.limits, C.c.calls_used, C.c.usd_spent)
         .outerjoin(C, and_(C.c.function_id == F.c.id, C.c.day == day)).order_by(F.c.name))
    if ids is not None:
        q = q.where(F.c.id.in_([uuid.UUID(i) for i in ids]))
    if ref is not None:
        try:
            q = q.where(or_(F.c.name == ref, F.c.id == uuid.UUID(ref)))
        except ValueError:
            q = q.where(F.c.name == ref)
    return [Subject(id=str(r.id), name=r.name, access=dict(r.access or {}),
                    limits=dict(r.limits or {}), calls_used=int(r.calls_used or 0),
                    usd_spent=float(r.usd_spent or 0.0)) for r in conn.execute(q)]


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
    for table in _TABLES.values():
        conn.execute(delete(table))
    conn.execute(delete(RM).where(RM.c.name == COMPACTED))
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


def compact(conn: Connection, before: int) -> int:
    """Delete the per-minute rows before the hour of `before` (their hours are summed in the
    hourly rows already) and move the compaction mark there; the number of rows deleted.
    Windows reaching before the mark are read in whole hours."""
    before -= before % HOUR
    mark = compacted_before(conn)
    if before <= mark:
        before = mark
    gone = conn.execute(delete(RU).where(RU.c.minute < before)).rowcount
    conn.execute(delete(XM).where(XM.c.minute < before))
    stmt = upsert(conn.dialect.name, RM)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                            set_={"minute": stmt.excluded.minute}),
                 {"name": COMPACTED, "minute": before})
    return int(gone or 0)
