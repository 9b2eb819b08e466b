"""The store against real SQLite and PostgreSQL: schema, resolve, logs, budgets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aiops import commands
from aiops.errors import ConfigError, NotFoundError, UserError
from aiops.store import LogRow, open_store, tables
from aiops.store import engine as db_engine
from tests.fixtures_db import apply_project, plan_project, spec_data, write_project


def test_migrations_create_exactly_the_models(store: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []
        assert db_engine.current_revision(conn) == db_engine.head_revision()
    assert db_engine.head_revision() == db_engine.SCHEMA_HEAD


@pytest.mark.postgres
def test_hourly_rollups_leave_room_for_hot_updates(pg_schema_url: str) -> None:
    """The hourly rollups' pages keep room, so that the updates of each log write stay on
    their page (migration 0010); the per-minute ones, mostly inserted, stay packed."""
    from sqlalchemy import text

    store = open_store(pg_schema_url, migrate=True)
    query = text("SELECT reloptions FROM pg_class WHERE oid = CAST(:t AS regclass)")
    with store.engine.connect() as conn:
        hourly = conn.execute(query, {"t": "ai_function_rollups_hourly"}).scalar_one()
        minute = conn.execute(query, {"t": "ai_function_rollups"}).scalar_one()
    assert (hourly, minute) == (["fillfactor=70"], None)


@pytest.mark.postgres
def test_a_migration_waits_for_another_past_the_lock_timeout(pg_schema_url: str) -> None:
    """Every connection waits for a lock at most the store's lock timeout, but a migration
    waits for the migration before it, however long (it would fail half-way otherwise)."""
    import threading
    import time

    import psycopg

    store = open_store(pg_schema_url, migrate=True, lock_timeout_s=0.2)
    holding, release = threading.Event(), threading.Event()

    plain = pg_schema_url.replace("postgresql+psycopg://", "postgresql://")

    def hold() -> None:
        with psycopg.connect(plain) as other:
            other.execute("SELECT pg_advisory_xact_lock(%s)", [db_engine.MIGRATE_LOCK_KEY])
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        threading.Timer(1.0, release.set).start()
        started = time.monotonic()
        db_engine.migrate(store.engine, "0011")
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert waited >= 0.9
    with store.engine.connect() as conn:
        assert db_engine.current_revision(conn) == "0011"
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar_one() == "200ms"


def test_upgrade_is_idempotent(store: Any, db_url: str) -> None:
    open_store(db_url, migrate=True)
    open_store(db_url)  # at head: no error


@pytest.mark.postgres
def test_unmigrated_postgres_says_what_to_run(pg_schema_url: str) -> None:
    with pytest.raises(ConfigError, match="run `aiops db upgrade`"):
        open_store(pg_schema_url)


@pytest.mark.postgres
def test_catalog_and_token_reads_are_their_statement_alone_on_postgres(
        pg_schema_url: str) -> None:
    """No BEGIN and ROLLBACK around a one-statement read: its transaction is the statement's
    own (PostgreSQL starts an implicit transaction at the statement's own timestamp)."""
    from sqlalchemy import text

    store = open_store(pg_schema_url, migrate=True)
    own = text("SELECT xact_start = query_start FROM pg_stat_activity "
               "WHERE pid = pg_backend_pid()")
    for _ in range(3):  # a pooled connection too
        assert store._read(lambda conn: conn.execute(own).scalar()) is True
        assert store.token_for_check("0123456789abcdef") is None
    with store.engine.begin() as conn:  # writes keep their transactions
        conn.execute(text("SELECT 1"))
        assert conn.execute(own).scalar() is False


def test_default_sqlite_is_created_and_migrated_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'dir' / 'aiops.db'}"
    st = open_store(url)
    assert st.read_state("p").functions == {}
    db_engine.dispose_engines(url)


def _applied(project: Path, *versions: dict[str, Any]) -> None:
    for data in versions:
        write_project(project, [data])
        apply_project(project, actor="tester")


def test_resolve_selectors(project: Path, db_url: str) -> None:
    # The version rules allow going down only to applied content: 1.1.0 last is a rollback.
    _applied(project, spec_data(version="1.0.0"), spec_data(version="1.1.0", model="m4"),
             spec_data(version="1.2.0", model="mock-large"),
             spec_data(version="2.0.0-rc.1", description="x", model="m3"),
             spec_data(version="1.1.0", model="m4"))
    st = open_store(db_url)
    assert st.resolve("greet", None).version == "1.1.0"  # current: where the pointer is
    assert st.resolve("greet", "1.2.0").version == "1.2.0"
    assert st.resolve("greet", "1").version == "1.2.0"  # newest applied 1.x
    assert st.resolve("greet", "1.1").version == "1.1.0"
    assert st.resolve("greet", "2.0.0-rc.1").version == "2.0.0-rc.1"
    dv = st.resolve("greet", "1.0.0")
    assert dv.content["input_schema"]["required"] == ["who"]  # runnable on its own
    assert dv.content["model"] == "mock-small"
    assert dv.limits["max_input_bytes"] == 65536
    with pytest.raises(NotFoundError, match=r"greet@3 is not applied; applied versions: "
                                            r"1\.0\.0, 1\.1\.0, 1\.2\.0, 2\.0\.0-rc\.1"):
        st.resolve("greet", "3")
    with pytest.raises(NotFoundError, match="did you mean `greet`"):
        st.resolve("gret", None)


def test_archived_function_does_not_run(project: Path, db_url: str) -> None:
    _applied(project, spec_data("greet"), spec_data("other"))
    write_project(project, [spec_data("other")])
    apply_project(project, prune=True, actor="tester")
    with pytest.raises(UserError, match="greet is archived and does not run"):
        open_store(db_url).resolve("greet", None)
    assert commands.resolve_version(commands.open_workspace(project, database_url=db_url),
                                    "other@1").version == "1.0.0"


def test_logs_insert_and_read_back(project: Path, db_url: str) -> None:
    _applied(project, spec_data())
    st = open_store(db_url)
    dv = st.resolve("greet")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    rows = [LogRow(function_id=dv.function_id, version=dv.version, version_id=dv.version_id,
                   status="ok" if i % 3 else "error", input={"who": f"n{i}"},
                   output="hi", execution_time=12.5, metadata={"model": "mock-small"},
                   provider="mock", cost_usd=0.001, input_tokens=10, output_tokens=2,
                   created_at=t0 + timedelta(seconds=i)) for i in range(10)]
    st.insert_logs(rows)
    st.insert_logs([])
    recent = st.recent_logs("greet", 5)
    assert [r.input["who"] for r in recent] == ["n9", "n8", "n7", "n6", "n5"]
    assert recent[0].version == "1.0.0" and recent[0].name == "greet"
    assert recent[0].created_at.tzinfo is not None
    errors = st.recent_logs("greet", 50, status="error")
    assert {r.input["who"] for r in errors} == {"n0", "n3", "n6", "n9"}
    since = st.recent_logs("greet", 50, since=t0 + timedelta(seconds=7))
    assert len(since) == 3


def test_plan_statement_count_does_not_grow_with_unchanged_functions(project: Path,
                                                                      db_url: str) -> None:
    st = open_store(db_url)
    counts = []
    for n in (3, 30):
        for version, model in (("1.0.0", "mock-small"), ("1.1.0", "mock-large")):
            write_project(project, [spec_data(f"fn-{i:02d}", version=version, model=model)
                                    for i in range(n)])
            apply_project(project, actor="tester")
        statements, plan = _count_statements(st, lambda: plan_project(project, store=st))
        assert plan.verdict() == "No changes."
        counts.append(statements)
    assert counts[0] == counts[1] <= 4


def _count_statements(st: Any, fn: Any) -> tuple[int, Any]:
    """(SQL statements `fn` sent, its result), counted with `before_cursor_execute`."""
    from sqlalchemy import event

    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(st.engine, "before_cursor_execute", before)
    try:
        out = fn()
    finally:
        event.remove(st.engine, "before_cursor_execute", before)
    return len([s for s in seen if not s.lstrip().upper().startswith(("BEGIN", "PRAGMA"))]), out


def test_logs_are_stored_and_filtered_in_utc_whatever_the_callers_zone(project: Path,
                                                                        db_url: str) -> None:
    # SQLite keeps no zone: a non-UTC `since` or `created_at` must be converted, not compared
    # as wall-clock text; a naive `since` means UTC (as everything aiops writes).
    _applied(project, spec_data())
    st = open_store(db_url)
    dv = st.resolve("greet")
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    st.insert_logs([LogRow(function_id=dv.function_id, version=dv.version, version_id=dv.version_id, status="ok",
                           created_at=t0 + timedelta(minutes=i)) for i in range(10)])
    since = (t0 + timedelta(minutes=7)).astimezone(plus2)
    assert len(st.recent_logs("greet", 50, since=since)) == 3
    assert len(st.recent_logs("greet", 50, since=datetime(2026, 1, 1, 12, 7))) == 3
    late = (t0 + timedelta(minutes=30)).astimezone(plus2)
    st.insert_logs([LogRow(function_id=dv.function_id, version=dv.version, version_id=dv.version_id,
                           status="error", created_at=late)])
    newest = st.recent_logs("greet", 1)[0]
    assert newest.status == "error" and newest.created_at == t0 + timedelta(minutes=30)
    assert len(st.recent_logs("greet", 50, since=since)) == 4


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql+psycopg2://u:s3cret@127.0.0.1/db", "driver `psycopg2` is not available"),
    ("postgresql+asyncpg://u:s3cret@127.0.0.1/db", "driver `asyncpg` is not available"),
    ("postgresql://u:s3cret@127.0.0.1:abc/db", "is not a URL"),
])
def test_bad_database_urls_are_config_errors_without_the_password(url: str,
                                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_store(url)
    assert "s3cret" not in str(info.value)


def test_a_password_in_the_query_string_is_never_shown() -> None:
    shown = db_engine.redact("postgresql+psycopg://u@127.0.0.1/db?password=s3cret&sslmode=require")
    assert "s3cret" not in shown and "sslmode=require" in shown


def test_a_schema_newer_than_this_aiops_says_so(db_url: str, store: Any) -> None:
    # A colleague ran a newer aiops against the database: say that, do not crash or suggest
    # `aiops db upgrade` (which cannot go forward to a revision this version does not know).
    from sqlalchemy import text

    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    db_engine.dispose_engines(db_url)
    for migrate in (None, True, False):
        with pytest.raises(ConfigError, match=r"revision 9999.*newer aiops") as info:
            open_store(db_url, migrate=migrate)
        assert "run `aiops db upgrade`" not in str(info.value)


def test_a_sqlite_path_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot create the directory"):
        open_store(f"sqlite:///{blocker}/sub/aiops.db")


@pytest.mark.postgres
def test_permission_denied_is_not_blamed_on_a_missing_migration(pg_schema_url: str) -> None:
    """A role without privileges on the tables used to be told to run `aiops db upgrade`:
    that hint is for a missing table or column (SQLSTATE 42P01, 42703) only."""
    import psycopg

    open_store(pg_schema_url, migrate=True)
    role = f"aiops_noperm_{uuid.uuid4().hex[:8]}"
    schema = pg_schema_url.rsplit("%3D", 1)[1]
    admin = psycopg.connect(pg_schema_url.replace("postgresql+psycopg://", "postgresql://"),
                            autocommit=True)
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    limited = pg_schema_url.replace("//postgres@", f"//{role}@")
    try:
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(f'GRANT SELECT ON alembic_version TO "{role}"')  # the revision check
        st = open_store(limited)
        with pytest.raises(ConfigError) as info:
            st.read_state("p")
        assert "permission denied for table" in str(info.value)
        assert "db upgrade" not in str(info.value)
    finally:
        db_engine.dispose_engines(limited)
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()


def test_a_missing_table_says_to_run_db_upgrade(store: Any, db_url: str) -> None:
    """The hint stays where it helps, on both databases (SQLite's "no such table" was an
    unexplained runtime failure)."""
    from sqlalchemy import text

    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE managed_functions"))
    with pytest.raises(ConfigError, match=r"managed_functions.*run `aiops db upgrade`"):
        store.read_state("p")
