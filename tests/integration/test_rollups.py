"""Rollups on real SQLite and PostgreSQL (issue 13): stats read from them agree exactly with a
query over the raw log rows; each execution is counted once, even when its write is retried
after a commit whose answer was lost; the backfill rebuilds them from the logs; compaction
to hours keeps the sums.
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from aiops import latency
from aiops.stats import NANO, WindowStats, minute_of
from aiops.store import DeployedVersion, LogRow, Store
from aiops.store.rollups import Cell
from tests.fixtures_db import apply_project, spec_data, write_project

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, on the hour


@pytest.fixture
def deployed(tmp_path: Path, store: Store) -> dict[str, DeployedVersion]:
    root = write_project(tmp_path / "proj", [spec_data("greet"), spec_data("other"),
                                             spec_data("idle")])
    apply_project(root, url=store.url, store=store, actor="ci <ci@example.com>")
    return {n: store.resolve(n) for n in ("greet", "other", "idle")}


def executions(dv: DeployedVersion, n: int, seed: int) -> list[LogRow]:
    """`n` varied executions over three hours from T0: versions, providers, models, error
    kinds, latencies from under 10 ms to past the last bucket, missing latencies, tokens and
    costs."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        ok = rng.random() < 0.8
        kind = rng.choice(["ProviderError", "OutputError", "TimeoutError"])
        latency_ms = rng.choice([None, rng.uniform(0, 5), rng.lognormvariate(6, 1.5),
                                 rng.uniform(90_000, 200_000), rng.lognormvariate(5, 0.5)])
        rows.append(LogRow(
            function_id=dv.function_id, version=rng.choice(["1.0.0", "1.1.0"]),
            version_id=None, status="ok" if ok else "error", input={"q": 1},
            output="x" if ok else None,
            error=None if ok else {"type": kind, "message": "m", "exit_code": 3},
            execution_time=latency_ms, metadata={"model": rng.choice(["small", "large"])},
            provider=rng.choice(["mock", "openai", None]),
            cost_usd=rng.choice([None, rng.uniform(0, 0.01), 1e-7 * rng.randint(1, 999)]),
            input_tokens=rng.choice([None, rng.randint(0, 5000)]),
            output_tokens=rng.randint(0, 900),
            created_at=T0 + timedelta(seconds=rng.uniform(0, 3 * 3600))))
    return rows


def raw(store: Store, name: str, since: datetime, until: datetime) -> dict[str, Any]:
    """The same numbers straight from ai_function_logs: counts and sums in SQL, the latencies
    read into the buckets (whole minutes: a row counts when its minute starts in the
    window)."""
    start = since.replace(second=0, microsecond=0)
    end = until if until == until.replace(second=0, microsecond=0) \
        else until.replace(second=0, microsecond=0) + timedelta(minutes=1)
    where = ("FROM ai_function_logs l JOIN ai_functions f ON f.id = l.function_id "
             "WHERE f.name = :name AND l.created_at >= :start AND l.created_at < :end")
    params = {"name": name, "start": start, "end": end}
    with store.engine.connect() as conn:
        sums = conn.execute(text(
            "SELECT count(*), coalesce(sum(CASE WHEN l.status = 'error' THEN 1 ELSE 0 END), 0), "
            "coalesce(sum(l.input_tokens), 0), coalesce(sum(l.output_tokens), 0), "
            f"coalesce(sum(l.cost_usd), 0) {where}"), params).one()
        rows = conn.execute(text(f"SELECT l.execution_time, l.cost_usd, l.error {where}"),
                            params).all()
    histogram = [0] * latency.BUCKETS
    for r in rows:
        if r.execution_time is not None:
            histogram[latency.bucket_of(r.execution_time / 1000)] += 1
    # jsonb comes back decoded; SQLite's JSON as its text (`null` for none)
    errors = [json.loads(r.error) if isinstance(r.error, str) else r.error for r in rows]
    kinds = Counter(e["type"] for e in errors if e is not None)
    return {"calls": sums[0], "errors": int(sums[1]), "input_tokens": int(sums[2]),
            "output_tokens": int(sums[3]), "cost_usd": float(sums[4]),
            "cost_nusd": sum(round(r.cost_usd * NANO) for r in rows if r.cost_usd is not None),
            "histogram": tuple(histogram), "kinds": dict(kinds)}


def assert_agree(stats: WindowStats, expected: dict[str, Any]) -> None:
    assert stats.calls == expected["calls"]
    assert stats.errors == expected["errors"]
    assert dict(stats.errors_by_kind) == expected["kinds"]
    assert stats.input_tokens == expected["input_tokens"]
    assert stats.output_tokens == expected["output_tokens"]
    assert stats.cost_nusd == expected["cost_nusd"]
    # The float sum in SQL, in whatever order the database adds: within a nano-dollar a row.
    assert abs(stats.cost_usd - expected["cost_usd"]) <= (expected["calls"] + 1) / NANO
    assert stats.histogram == expected["histogram"]
    for q in (0.5, 0.95, 0.99):
        reading = latency.percentile(expected["histogram"], q)
        assert stats.latency_ms(q) == (None if reading is None else round(reading * 1000, 3))


WINDOWS = [(T0, T0 + timedelta(hours=3)), (T0 + timedelta(minutes=17, seconds=30),
                                           T0 + timedelta(hours=1, minutes=3, seconds=1)),
           (T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=1)),
           # whole hours from the hourly rows, ragged edges from the per-minute rows
           (T0 + timedelta(minutes=41, seconds=5), T0 + timedelta(hours=2, minutes=3))]


def test_stats_agree_with_the_raw_log_rows_exactly(store: Store,
                                                   deployed: dict[str, DeployedVersion]) -> None:
    greet = executions(deployed["greet"], 1500, seed=1)
    other = executions(deployed["other"], 400, seed=2)
    mixed = greet + other
    random.Random(3).shuffle(mixed)
    for i in range(0, len(mixed), 250):  # groups as the runner writes them
        store.insert_logs(mixed[i:i + 250])
    assert sum(1 for r in greet if r.status == "error") > 100
    for since, until in WINDOWS:
        got = store.window_stats(None, since, until)
        assert set(got) == {"greet", "other", "idle"}
        assert got["idle"] == WindowStats()
        for name in ("greet", "other"):
            assert_agree(got[name], raw(store, name, since, until))
        assert store.window_stats(["greet", "nobody"], since, until).keys() == {"greet"}
        assert_tiers_agree(store, since, until)
    whole = store.window_stats(["greet"], T0, T0 + timedelta(hours=3))["greet"]
    assert whole.calls == 1500  # every execution, once
    # Open at its end (the monitoring page): its hours, the last included, from the hourly
    # rows, the ragged start from the minutes.
    since = T0 + timedelta(minutes=41, seconds=5)
    got = store.window_stats(None, since)
    for name in ("greet", "other"):
        assert_agree(got[name], raw(store, name, since, T0 + timedelta(hours=4)))


def assert_tiers_agree(store: Store, since: datetime, until: datetime) -> None:
    """The monitoring page's narrower rollups agree with the full ones: the cells of every
    function (summed over the functions, without versions) with the full cells of each id
    added up, per step of a minute and of an hour; each function's hourly totals with its
    full sums over the same hours."""
    def per_key(cells: list[Cell]) -> dict[tuple[str, str, int], WindowStats]:
        out: dict[tuple[str, str, int], WindowStats] = {}
        for c in cells:
            key = (c.provider, c.model, c.start)
            out[key] = out.get(key, WindowStats()) + c.stats
        return out

    ids = [s.function_id for s in store.stats(None, since, until)]
    for step in (1, 60):  # minutes (none left where compacted), and hours
        across = store.stats_cells(None, since, until, step)
        assert {c.version for c in across} <= {""}
        full = store.stats_cells(ids, since, until, step)
        assert per_key(across) == per_key(full)
    assert sum(c.stats.calls for c in full) > 0
    # The hourly totals of the hours the window touches.
    h0 = since.replace(minute=0, second=0, microsecond=0)
    h1 = until.replace(minute=0, second=0, microsecond=0)
    h1 += timedelta(hours=1) if h1 < until else timedelta()
    full = {s.function_id: (s.stats.calls, s.stats.errors, s.stats.input_tokens,
                            s.stats.output_tokens, s.stats.cost_nusd)
            for s in store.stats(None, h0, h1, buckets=False)}
    with store.engine.connect() as conn:
        hourly = {str(uuid.UUID(str(r[0]))): tuple(int(x) for x in r[1:]) for r in conn.execute(
            text("SELECT function_id, sum(calls), sum(errors), sum(input_tokens), "
                 "sum(output_tokens), sum(cost_nusd) FROM ai_function_totals_hourly "
                 "WHERE minute >= :lo AND minute < :hi GROUP BY function_id"),
            {"lo": minute_of(h0), "hi": minute_of(h1)})}
    assert hourly == full


def test_the_top_lists_are_ranked_in_sql_as_each_functions_totals_rank(
        store: Store, deployed: dict[str, DeployedVersion]) -> None:
    """The monitoring page's top lists: the n of most cost and of most errors, their totals
    the totals tier's, ties by name (idle runs what other runs: their sums tie)."""
    other = executions(deployed["other"], 300, seed=12)
    idle = [replace(r, id=str(uuid.uuid4()), function_id=deployed["idle"].function_id)
            for r in other]
    store.insert_logs(executions(deployed["greet"], 600, seed=11) + other + idle)
    names = {dv.function_id: n for n, dv in deployed.items()}
    for since, until in WINDOWS:
        totals = {s.function_id: s.stats
                  for s in store.stats(None, since, until, buckets=False)}
        for n in (1, 2, 5):
            by_cost, by_errors = store.stats_top(None, since, until, n)
            for got, amount in ((by_cost, "cost_nusd"), (by_errors, "errors")):
                expected = sorted((f for f, s in totals.items() if getattr(s, amount)),
                                  key=lambda f, a=amount: (  # type: ignore[misc]
                                      -getattr(totals[f], a), names[f]))[:n]
                assert [r.function_id for r in got] == expected
                assert [(r.name, r.stats) for r in got] == [(names[f], totals[f])
                                                            for f in expected]
        mine = store.stats_top([deployed["other"].function_id], since, until, 5)
        errs = totals.get(deployed["other"].function_id, WindowStats()).errors
        assert [r.name for r in mine[1]] == (["other"] if errs else [])
    # Three hours: greet first, then idle and other tied, idle by name.
    assert [r.name for r in store.stats_top(None, *WINDOWS[0], 2)[1]] == ["greet", "idle"]


# PostgreSQL writes 16 rows or fewer in one statement, and one row without a transaction
@pytest.mark.parametrize("n", [60, 10, 1])
def test_a_retried_write_whose_commit_went_through_counts_once(
        store: Store, deployed: dict[str, DeployedVersion],
        monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The connection drops after COMMIT: the write is tried again (the patience), finds its
    rows there, and adds nothing to the rollups; a group half of which is stored counts the
    other half only."""
    rows = executions(deployed["greet"], n, seed=4)
    store.insert_logs(rows[:n * 5 // 12])  # 25 of 60, 4 of 10
    patience = store._patience
    real = patience.transaction
    lost_answers = []

    @contextlib.contextmanager
    def answer_lost(deadline: float, **how: Any) -> Iterator[Any]:
        with real(deadline, **how) as conn:
            yield conn
        if not lost_answers:  # committed; the client never hears so
            lost_answers.append(1)
            raise sa_exc.OperationalError("COMMIT", {}, Exception("server closed the "
                                                                  "connection unexpectedly"))

    monkeypatch.setattr(patience, "transaction", answer_lost)
    store.insert_logs(rows)
    assert lost_answers == [1]
    store.insert_logs(rows)  # and once more, as a caller that did not trust the answer
    got = store.window_stats(["greet"], T0, T0 + timedelta(hours=3))["greet"]
    assert got.calls == n
    assert_agree(got, raw(store, "greet", T0, T0 + timedelta(hours=3)))


ROLLUP_TABLES = ("ai_function_rollups", "ai_function_rollups_hourly", "ai_rollups_across",
                 "ai_rollups_across_hourly", "ai_function_totals_hourly")


def test_backfill_rebuilds_the_rollups_from_the_logs_and_is_idempotent(
        store: Store, deployed: dict[str, DeployedVersion]) -> None:
    store.insert_logs(executions(deployed["greet"], 700, seed=5)
                      + executions(deployed["other"], 100, seed=6))
    before = {w: store.window_stats(None, *w) for w in WINDOWS}
    with store.engine.begin() as conn:  # as before the migration: logs without rollups
        for table in ROLLUP_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    assert store.window_stats(["greet"], *WINDOWS[0])["greet"].calls == 0
    assert store.backfill_rollups() == 800
    assert store.backfill_rollups() == 800
    assert {w: store.window_stats(None, *w) for w in WINDOWS} == before
    for w in WINDOWS:
        assert_tiers_agree(store, *w)


def test_compaction_keeps_the_hours_and_widens_older_edges_to_them(
        store: Store, deployed: dict[str, DeployedVersion]) -> None:
    store.insert_logs(executions(deployed["greet"], 900, seed=7))
    hours = [(T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1)) for h in range(3)]
    before = [store.window_stats(["greet"], *h)["greet"] for h in hours]

    def minute_rows() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM ai_function_rollups")).scalar_one())

    rows = minute_rows()
    deleted = store.compact_rollups(T0 + timedelta(hours=2, minutes=30))  # two whole hours
    assert 100 < deleted < rows == deleted + minute_rows()
    assert [store.window_stats(["greet"], *h)["greet"] for h in hours] == before
    with store.engine.connect() as conn:  # the across minutes went with the function's
        assert conn.execute(text("SELECT count(*) FROM ai_rollups_across WHERE minute < "
                                 ":mark"), {"mark": minute_of(T0) + 120}).scalar_one() == 0
    for h in hours:
        assert_tiers_agree(store, *h)
    # An edge in a compacted hour widens to the whole hour; one after the mark does not.
    ragged = store.window_stats(["greet"], T0 + timedelta(minutes=20),
                                T0 + timedelta(hours=2, minutes=15))["greet"]
    assert ragged == before[0] + before[1] + raw_window(store, T0 + timedelta(hours=2),
                                                        T0 + timedelta(hours=2, minutes=15))
    assert store.compact_rollups(T0 + timedelta(hours=2, minutes=30)) == 0
    assert store.compact_rollups(T0) == 0  # the mark never moves back
    # A write for a compacted hour is in its hourly row at once.
    late = [LogRow(**{**r.__dict__, "id": str(uuid.uuid4()),
                      "created_at": T0 + timedelta(minutes=10)})
            for r in executions(deployed["greet"], 5, seed=8)]
    store.insert_logs(late)
    assert store.window_stats(["greet"], *hours[0])["greet"].calls == before[0].calls + 5
    assert store.window_stats(["greet"], T0 + timedelta(minutes=50),
                              T0 + timedelta(minutes=51))["greet"].calls \
        == before[0].calls + 5  # widened to its hour


def raw_window(store: Store, since: datetime, until: datetime) -> WindowStats:
    """The rollup's reading of the raw rows of a window, as a WindowStats."""
    r = raw(store, "greet", since, until)
    return WindowStats(calls=r["calls"], errors_by_kind=r["kinds"],
                       input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
                       cost_nusd=r["cost_nusd"], histogram=r["histogram"])


def test_the_hourly_migration_sums_the_minutes_already_there(
        store: Store, deployed: dict[str, DeployedVersion]) -> None:
    from aiops.store.engine import SCHEMA_HEAD, migrate

    store.insert_logs(executions(deployed["greet"], 400, seed=9))
    before = {w: store.window_stats(["greet"], *w) for w in WINDOWS}
    migrate(store.engine, "0007")  # drops the hourly rows; the minute rows stay
    migrate(store.engine, SCHEMA_HEAD)  # and the across and totals rows, from them (0012)
    with store.engine.connect() as conn:
        for table in ROLLUP_TABLES:
            assert conn.execute(text(f"SELECT sum(calls) FROM {table}")).scalar_one() == 400
    assert {w: store.window_stats(["greet"], *w) for w in WINDOWS} == before
    for w in WINDOWS:
        assert_tiers_agree(store, *w)


@pytest.mark.postgres
@pytest.mark.parametrize(("n", "statements"), [(40, ["BEGIN;", "INSERT", "WITH"]),
                                               (6, ["BEGIN;", "WITH"]), (2, ["WITH"])])
def test_a_log_write_on_postgresql_is_one_to_three_statements(
        pg_schema_url: str, tmp_path: Path, n: int, statements: list[str]) -> None:
    """Each statement is a round trip the run route waits for before it answers: BEGIN with
    the transaction's lock_timeout, then the rows and their rollups (one statement for a
    group of 16 rows or fewer, two for more), then the commit; one row, as a server's run
    writes, is its one statement alone (its own transaction). The connection keeps the
    store's lock timeout, and the rollups are exact."""
    from sqlalchemy import event

    from aiops.store import open_store

    store = open_store(pg_schema_url, migrate=True)
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(root, url=store.url, store=store, actor="ci <ci@example.com>")
    rows = executions(store.resolve("greet"), n, seed=10)
    store.insert_logs(rows[:1])  # the actor's user row, found once per process
    sent: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: sent.append(statement.split()[0]))
    store.insert_logs(rows[1:])
    assert sent == statements
    with store.engine.connect() as conn:
        assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "30s"
    got = store.window_stats(["greet"], T0, T0 + timedelta(hours=3))["greet"]
    assert got.calls == n
    assert_agree(got, raw(store, "greet", T0, T0 + timedelta(hours=3)))


@pytest.mark.postgres
def test_a_log_write_on_a_connection_that_died_in_the_pool_is_written_once(
        pg_schema_url: str, tmp_path: Path) -> None:
    """A log write takes its connection without the pool's ping: when the connection died
    while pooled (the database restarted, say), the write's first statement fails, and the
    write is tried again on a new connection."""
    import psycopg
    from sqlalchemy import event

    from aiops.store import open_store

    store = open_store(pg_schema_url, migrate=True)
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(root, url=store.url, store=store, actor="ci <ci@example.com>")
    rows = executions(store.resolve("greet"), 30, seed=11)
    store.insert_logs(rows[:10])
    with contextlib.ExitStack() as stack:  # every pooled connection, at once
        pooled = [stack.enter_context(store.engine.connect())
                  for _ in range(store.engine.pool.checkedin())]  # type: ignore[attr-defined]
        pids = [c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in pooled]
    assert pids
    plain = pg_schema_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(p) FROM unnest(%s::int[]) p", [pids])
    failed: list[bool] = []
    event.listen(store.engine, "handle_error",
                 lambda context: failed.append(context.is_pre_ping))
    store.insert_logs(rows[10:])
    assert failed == [False]  # not the pool's ping: the write's statement met it
    got = store.window_stats(["greet"], T0, T0 + timedelta(hours=3))["greet"]
    assert got.calls == 30
    assert_agree(got, raw(store, "greet", T0, T0 + timedelta(hours=3)))
