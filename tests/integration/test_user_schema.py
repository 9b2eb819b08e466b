"""The user's schema (DESIGN §5) on live SQLite and PostgreSQL databases: every column of its
DDL under its name, required where it says so, with its types on PostgreSQL; the copies of
the current version on ai_functions kept in step by apply, rollback and drift restore; a
user row behind every actor; migration 0003 filling in existing rows, and undone."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from aiops import commands
from aiops.actors import os_user
from aiops.store import LogRow, Store, open_store
from aiops.store.engine import migrate
from aiops.store.tables import F, L, U, V
from tests import fixtures_providers as runner_project
from tests.fixtures_db import apply_project, plan_project, spec_data, write_project

# DESIGN §5, verbatim.
DDL = """
create table ai_functions (
  id uuid primary key default uuid_generate_v4(),
  name text not null, description text,
  input_schema jsonb not null, output_schema jsonb not null,
  provider text not null,            -- 'groq', 'openai', 'custom', etc.
  version text not null, status text not null default 'draft',
  created_by uuid references auth.users not null, updated_by uuid references auth.users,
  created_at timestamptz default now(), updated_at timestamptz default now(), metadata jsonb);
create table ai_function_versions (
  id uuid primary key default uuid_generate_v4(),
  function_id uuid references ai_functions not null, version text not null,
  prompt_template text not null, configuration jsonb not null,  -- provider-specific settings
  created_by uuid references auth.users not null, created_at timestamptz default now(),
  metadata jsonb);
create table ai_function_logs (
  id uuid primary key default uuid_generate_v4(),
  function_id uuid references ai_functions not null, version text not null,
  input jsonb not null, output jsonb, error text, execution_time float,
  created_by uuid references auth.users not null, created_at timestamptz default now(),
  metadata jsonb);
"""

# Where aiops stores more than the DDL's text: the prompt is a list of messages, the error
# names its kind and exit code (both JSON; SQL reads them with ->> / json_extract).
RICHER_THAN_TEXT = {("ai_function_versions", "prompt_template"), ("ai_function_logs", "error")}


def ddl_columns(ddl: str) -> dict[str, dict[str, dict[str, Any]]]:
    """table -> column -> {type, not_null, default, references} as the DDL declares them."""
    ddl = re.sub(r"--[^\n]*", "", ddl)
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for table, body in re.findall(r"create table (\w+) \((.*?)\);", ddl, re.S):
        items, depth, start = [], 0, 0
        for i, ch in enumerate(body):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                items.append(body[start:i])
                start = i + 1
        items.append(body[start:])
        columns = {}
        for item in items:
            words = item.split()
            text = " ".join(words).lower()
            ref = re.search(r"references (\S+)", text)
            columns[words[0]] = {
                "type": words[1], "not_null": "not null" in text or "primary key" in text,
                "default": "default" in text,
                "references": ref and ref[1].removeprefix("auth.")}
        tables[table] = columns
    return tables


def test_the_ddl_parses_into_every_column() -> None:
    tables = ddl_columns(DDL)
    assert {t: len(c) for t, c in tables.items()} == {
        "ai_functions": 13, "ai_function_versions": 8, "ai_function_logs": 10}
    assert tables["ai_functions"]["created_by"] == {
        "type": "uuid", "not_null": True, "default": False, "references": "users"}
    assert tables["ai_function_logs"]["output"]["not_null"] is False


def test_the_live_tables_have_every_column_of_the_ddl(store: Store) -> None:
    pg = store.dialect == "postgresql"
    inspector = sa.inspect(store.engine)
    for table, declared in ddl_columns(DDL).items():
        live = {c["name"]: c for c in inspector.get_columns(table)}
        keys = {(tuple(k["constrained_columns"]), k["referred_table"])
                for k in inspector.get_foreign_keys(table)}
        for name, want in declared.items():
            where = f"{table}.{name}"
            assert name in live, f"{where} is missing"
            column = live[name]
            if want["not_null"]:
                assert not column["nullable"], f"{where} must be NOT NULL"
            if want["default"]:
                assert column["default"] is not None, f"{where} has no default"
            if want["references"]:
                assert ((name,), want["references"]) in keys, f"{where}: no foreign key"
            if pg:
                assert _pg_type_matches(want["type"], column["type"], (table, name)), \
                    f"{where} is {column['type']!r}, not {want['type']}"


def _pg_type_matches(declared: str, live: Any, where: tuple[str, str]) -> bool:
    if declared == "uuid":
        return isinstance(live, postgresql.UUID)
    if declared == "jsonb" or where in RICHER_THAN_TEXT:
        return isinstance(live, postgresql.JSONB)
    if declared == "timestamptz":
        return isinstance(live, sa.DateTime) and bool(live.timezone)
    if declared == "text":
        return isinstance(live, sa.String)
    if declared == "float":
        return isinstance(live, sa.Float)
    raise AssertionError(f"no rule for {declared}")


def test_sql_written_against_the_ddl_reads_and_writes(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    apply_project(project, actor="Ada <ada@example.org>")
    st = open_store(db_url)
    with st.engine.begin() as conn:
        f = conn.execute(sa.text(
            "SELECT f.id, f.version, f.provider, f.status, u.name FROM ai_functions f "
            "JOIN users u ON u.id = f.created_by WHERE f.name = 'greet'")).one()
        assert (f.version, f.provider, f.status, f.name) == ("1.0.0", "mock", "active", "Ada")
        # A version row as the DDL writes it: no id, no created_at (their defaults fill in).
        conn.execute(sa.text(
            "INSERT INTO ai_function_versions (function_id, version, behaviour_hash, content, "
            "prompt_template, input_schema, output_schema, provider, model, configuration, "
            "created_by) SELECT id, '9.9.9', '', '{}', '[]', '{}', '{}', 'mock', 'm', '{}', "
            "created_by FROM ai_functions WHERE name = 'greet'"))
        made = conn.execute(sa.select(V.c.id, V.c.created_at)
                            .where(V.c.version == "9.9.9")).one()
    assert isinstance(made.id, uuid.UUID) and made.created_at is not None


def _copies(db_url: str, name: str = "greet") -> tuple[Any, Any]:
    """(the function's copies and users, its current version's columns)."""
    with open_store(db_url).engine.connect() as conn:
        f = conn.execute(sa.select(F).where(F.c.name == name)).one()
        v = conn.execute(sa.select(V).where(V.c.id == f.current_version_id)).one()
    return f, v


def _in_step(db_url: str, version: str, name: str = "greet") -> Any:
    f, v = _copies(db_url, name)
    assert v.version == version
    assert (f.version, f.input_schema, f.output_schema, f.provider) == (
        v.version, v.input_schema, v.output_schema, v.provider)
    return f


def _user_id(db_url: str, name: str) -> uuid.UUID:
    with open_store(db_url).engine.connect() as conn:
        return conn.execute(sa.select(U.c.id).where(U.c.name == name)).scalar_one()


WIDER = {"type": "object", "required": ["who"],
         "properties": {"who": {"type": "string"}, "tone": {"type": "string"}},
         "additionalProperties": False}


def test_apply_rollback_and_drift_restore_keep_the_function_copies_in_step(
        project: Path, db_url: str) -> None:
    v1 = spec_data()
    write_project(project, [v1])
    apply_project(project, actor="Ada <ada@example.org>")
    f = _in_step(db_url, "1.0.0")
    ada = _user_id(db_url, "Ada")
    assert f.created_by == f.updated_by == ada

    write_project(project, [spec_data(version="2.0.0", input_schema=WIDER,
                                      output_schema={"type": "object"})])
    apply_project(project, actor="Bob <bob@example.org>")
    f = _in_step(db_url, "2.0.0")
    assert f.input_schema == WIDER and f.output_schema == {"type": "object"}
    assert (f.created_by, f.updated_by) == (ada, _user_id(db_url, "Bob"))

    write_project(project, [v1])  # git revert: a rollback
    assert apply_project(project, actor="Cy").plan.verdict() == "Plan: 1 rollback"
    f = _in_step(db_url, "1.0.0")
    assert f.input_schema == v1["input_schema"] and f.updated_by == _user_id(db_url, "Cy")

    # Someone points the function at 2.0.0 by hand: plan says so, apply moves it back.
    with open_store(db_url).engine.begin() as conn:
        newer = conn.execute(sa.select(V.c.id).where(V.c.version == "2.0.0")).scalar_one()
        conn.execute(sa.update(F).where(F.c.name == "greet")
                     .values(current_version_id=newer))
    assert [d.kind for d in plan_project(project).drift] == ["pointer"]
    apply_project(project, actor="Cy")
    _in_step(db_url, "1.0.0")
    assert plan_project(project).verdict() == "No changes."


def test_a_metadata_update_keeps_the_copies(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    apply_project(project, actor="Ada")
    write_project(project, [spec_data(description="Friendlier.")])
    assert apply_project(project, actor="Bob").plan.verdict() == "Plan: 1 metadata update"
    f = _in_step(db_url, "1.0.0")
    assert f.updated_by == _user_id(db_url, "Bob") != f.created_by


def test_copies_edited_by_hand_are_drift_that_apply_rewrites(project: Path,
                                                             db_url: str) -> None:
    write_project(project, [spec_data()])
    apply_project(project, actor="Ada")
    with open_store(db_url).engine.begin() as conn:
        conn.execute(sa.update(F).where(F.c.name == "greet").values(
            version="6.6.6", input_schema={"type": "object"}))
    plan = plan_project(project)
    assert [(d.kind, "copies of its current version" in d.message) for d in plan.drift] == [
        ("metadata", True)]
    apply_project(project, actor="Bob")
    assert _in_step(db_url, "1.0.0").updated_by == _user_id(db_url, "Bob")
    assert plan_project(project).verdict() == "No changes."


# --- who ran it -------------------------------------------------------------------------------


def test_a_run_logs_the_version_it_ran_and_its_user(
        tmp_path: Path, db_url: str, store: Store, mock_provider: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY)
    apply_project(root, url=db_url, store=store, actor="ci")
    for name, value in runner_project.env_for(mock_provider.url).items():
        monkeypatch.setenv(name, value)
    ws = commands.open_workspace(root, database_url=db_url)
    ticket = {"subject": "Charged twice", "body": "Refund one."}
    for actor in ("Ann <ann@example.org>", "Ann <ann@example.org>", None):
        assert asyncio.run(commands.run(ws, "classify", ticket, actor=actor)).ok
    rows = store.recent_logs("classify")
    assert {r.version for r in rows} == {store.resolve("classify").version}
    ann, me = _user_id(db_url, "Ann"), _user_id(db_url, os_user())
    assert sorted(str(r.created_by) for r in rows) == sorted(map(str, (ann, ann, me)))
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(U)
                            .where(U.c.name == "Ann")).scalar_one() == 1


def test_an_actor_is_resolved_once_per_process(store: Store, tmp_path: Path,
                                               db_url: str) -> None:
    root = write_project(tmp_path / "proj", [spec_data()])
    apply_project(root, url=db_url, store=store, actor="ci")
    dv = store.resolve("greet")

    def rows(actor: str | None) -> list[LogRow]:
        return [LogRow(function_id=dv.function_id, version=dv.version,
                       version_id=dv.version_id, status="ok", actor=actor) for _ in range(3)]

    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *a: statements.append(a[2]))
    store.insert_logs(rows("worker"))
    assert any("users" in s for s in statements)  # found or made once
    statements.clear()
    store.insert_logs(rows("worker"))
    assert not any("users" in s for s in statements)
    store.insert_logs(rows(None))  # no actor at all: the user `unknown`
    with store.engine.connect() as conn:
        by = dict(conn.execute(sa.select(U.c.name, sa.func.count()).join(
            L, L.c.created_by == U.c.id).group_by(U.c.name)).all())
    assert by == {"worker": 6, "unknown": 3}


def test_concurrent_first_uses_of_an_actor_make_one_user_row(store: Store) -> None:
    from aiops.store.users import ensure_user

    with store.engine.begin() as a:
        first = ensure_user(a, "Eve <eve@example.org>")
    with store.engine.begin() as b:  # another process, same actor: the same row
        again = ensure_user(b, "Eve Again <eve@example.org>")
    assert first == again
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(U)).scalar_one() == 1


# --- migration 0003 over existing rows ------------------------------------------------------------


def test_migration_0003_fills_in_existing_rows_and_is_undone(store: Store) -> None:
    migrate(store.engine, "0002")
    ids = {k: uuid.uuid4() for k in ("f", "v1", "v2", "g", "ada", "l1", "l2", "l3", "l4")}
    now = datetime.now(UTC)
    j = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, name, email, created_at) "
                             "VALUES (:id, 'Ada', 'ada@example.org', :now)")
                     .bindparams(sa.bindparam("id", type_=sa.Uuid())),
                     {"id": ids["ada"], "now": now})
        fn = sa.text(
            "INSERT INTO ai_functions (id, name, description, status, current_version_id, "
            "reconciled_version_id, metadata, metadata_hash, limits, access, alerts, "
            "created_at, updated_at, created_by) VALUES (:id, :name, '', 'active', :cur, :cur, "
            ":j, '', :j, :j, :j, :now, :now, :by)").bindparams(
            sa.bindparam("id", type_=sa.Uuid()), sa.bindparam("cur", type_=sa.Uuid()),
            sa.bindparam("by", type_=sa.Uuid()), sa.bindparam("j", type_=j))
        conn.execute(fn, [{"id": ids["f"], "name": "greet", "cur": ids["v2"], "j": {},
                           "now": now, "by": ids["ada"]},
                          {"id": ids["g"], "name": "orphan", "cur": None, "j": {},
                           "now": now, "by": None}])
        ver = sa.text(
            "INSERT INTO ai_function_versions (id, function_id, version, behaviour_hash, "
            "content, prompt_template, input_schema, output_schema, provider, model, "
            "configuration, created_at, created_by) VALUES (:id, :f, :v, '', :j, :j, :schema, "
            ":j, :p, 'm', :j, :now, NULL)").bindparams(
            sa.bindparam("id", type_=sa.Uuid()), sa.bindparam("f", type_=sa.Uuid()),
            sa.bindparam("j", type_=j), sa.bindparam("schema", type_=j))
        conn.execute(ver, [{"id": ids["v1"], "f": ids["f"], "v": "1.0.0", "j": {}, "now": now,
                            "schema": {"type": "string"}, "p": "groq"},
                           {"id": ids["v2"], "f": ids["f"], "v": "1.1.0", "j": {}, "now": now,
                            "schema": {"type": "object"}, "p": "openai"}])
        log = sa.text(
            "INSERT INTO ai_function_logs (id, function_id, version_id, input, status, user_id, "
            "actor, created_at, metadata) VALUES (:id, :f, :v, NULL, 'ok', NULL, :actor, :now, "
            ":meta)").bindparams(
            sa.bindparam("id", type_=sa.Uuid()), sa.bindparam("f", type_=sa.Uuid()),
            sa.bindparam("v", type_=sa.Uuid()), sa.bindparam("meta", type_=j))
        conn.execute(log, [
            {"id": ids["l1"], "f": ids["f"], "v": ids["v1"], "actor": "Ada <ada@example.org>",
             "now": now, "meta": {}},
            {"id": ids["l2"], "f": ids["f"], "v": None, "actor": "cron", "now": now,
             "meta": {"version": "1.0.0"}},
            {"id": ids["l3"], "f": ids["f"], "v": None, "actor": None, "now": now, "meta": {}},
            {"id": ids["l4"], "f": ids["f"], "v": ids["v2"], "actor": "cron", "now": now,
             "meta": {}}])

    migrate(store.engine, "0003")
    with store.engine.connect() as conn:
        users = dict(conn.execute(sa.select(U.c.name, U.c.id)).all())
        assert set(users) == {"Ada", "cron", "unknown"}
        f = {r.name: r for r in conn.execute(sa.select(F))}
        assert (f["greet"].version, f["greet"].provider, f["greet"].input_schema) == (
            "1.1.0", "openai", {"type": "object"})
        assert (f["orphan"].version, f["orphan"].created_by) == ("unknown", users["unknown"])
        assert f["greet"].created_by == users["Ada"] and f["greet"].updated_by is None
        assert set(conn.execute(sa.select(V.c.created_by)).scalars()) == {users["unknown"]}
        logs = {r.id: r for r in conn.execute(sa.select(L))}
    assert [(logs[ids[k]].version, logs[ids[k]].created_by) for k in ("l1", "l2", "l3", "l4")] \
        == [("1.0.0", users["Ada"]), ("1.0.0", users["cron"]), ("unknown", users["unknown"]),
            ("1.1.0", users["cron"])]
    assert logs[ids["l3"]].input is None  # JSON null now, not SQL NULL

    migrate(store.engine, "0002")
    inspector = sa.inspect(store.engine)
    columns = {c["name"]: c for c in inspector.get_columns("ai_function_logs")}
    assert "created_by" not in columns and "version" not in columns
    assert columns["user_id"]["nullable"]
    assert not {"version", "provider", "updated_by"} & {
        c["name"] for c in inspector.get_columns("ai_functions")}
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ai_function_logs "
                                    "WHERE user_id IS NOT NULL")).scalar_one() == 4
    migrate(store.engine, "0003")  # and forward again
