"""Shared fixtures for the database and the reconciler.

- `db_url`: parametrised over SQLite (a temporary file) and PostgreSQL (a fresh schema per
  test through search_path, from AIOPS_TEST_DATABASE_URL; skipped only when it is unset).
- `store`: an aiops.store.Store on `db_url`, migrated.
- `make_spec(**overrides)`, `spec_data(...)`: tests.factories' (the one factory of test specs);
  `write_project(root, specs)`: a project on disk.
- `held_lock(db_url, table, most_s)`: another connection holding a write lock; `holding(hold)`
  runs a lock holder in a thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.factories import make_spec as make_spec
from tests.factories import spec_data as spec_data

PG_ENV = "AIOPS_TEST_DATABASE_URL"

PROVIDERS_YAML = """\
providers:
  mock:
    type: openai
    api_key_env: MOCK_API_KEY
    models:
      mock-small: {input_per_mtok: 0.1, output_per_mtok: 0.2}
      mock-large: {input_per_mtok: 1.0, output_per_mtok: 2.0}
"""


def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _pg_admin(url: str, sql: str) -> None:
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, as a URL whose search_path points at it."""
    base = pg_base_url()
    if base is None:
        pytest.skip(f"{PG_ENV} is not set (CI sets it)")
    with pg_schema(base) as url:
        yield url


@contextlib.contextmanager
def pg_schema(base: str) -> Iterator[str]:
    """A new schema on the server of `base` (a URL whose search_path points at it), dropped
    at the end."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _pg_admin(base, f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        from aiops.store.engine import dispose_engines

        dispose_engines(url)
        _pg_admin(base, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'aiops.db'}"
        yield url
        from aiops.store.engine import dispose_engines

        dispose_engines(url)
    else:
        yield request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(db_url: str) -> Any:
    from aiops.store import open_store

    return open_store(db_url, migrate=True)


@pytest.fixture(name="make_spec")
def make_spec_fixture() -> Any:
    return make_spec


def write_function(root: Path, data: dict[str, Any]) -> Path:
    path = root / "functions" / data["name"] / "function.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def write_project(root: Path, functions: list[dict[str, Any]] | None = None) -> Path:
    """A project on disk: providers.yaml and one file per function (others removed)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "providers.yaml").write_text(PROVIDERS_YAML, encoding="utf-8")
    fdir = root / "functions"
    if fdir.exists():
        for old in fdir.glob("*/function.yaml"):
            old.unlink()
    fdir.mkdir(exist_ok=True)
    for data in functions or []:
        write_function(root, data)
    return root


@pytest.fixture
def project(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project wired to `db_url` (AIOPS_DATABASE_URL), with a fixed project id."""
    from aiops.store import open_store

    open_store(db_url, migrate=True)
    monkeypatch.setenv("AIOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    return write_project(tmp_path / "proj")


# --- reading the database back in tests ---------------------------------------------------

TABLES = ("users", "ai_functions", "ai_function_versions", "ai_function_logs",
          "reconcile_runs", "managed_functions", "usage_counters", "budget_leases",
          "api_tokens", "alert_states", "alert_history", "alert_outbox", "alert_evaluator")


def snapshot(db_url: str) -> dict[str, Any]:
    """Every row of every table, to compare before and after."""
    from sqlalchemy import text

    from aiops.store import open_store

    st = open_store(db_url)
    with st.engine.connect() as conn:
        return {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")).all()))
                for t in TABLES}


def current_versions(db_url: str) -> dict[str, tuple[str, str | None]]:
    """name -> (status, current version) as the database has them."""
    from sqlalchemy import select

    from aiops.store import open_store
    from aiops.store.tables import F, V

    st = open_store(db_url)
    with st.engine.connect() as conn:
        rows = conn.execute(select(F.c.name, F.c.status, V.c.version)
                            .outerjoin(V, V.c.id == F.c.current_version_id)).all()
    return {r.name: (r.status, r.version) for r in rows}


def count(db_url: str, table: Any) -> int:
    from sqlalchemy import func, select

    from aiops.store import open_store

    with open_store(db_url).engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def budget_leases(store: Any) -> list[Any]:
    """The rows of budget_leases (aiops.budgets), oldest day first."""
    from sqlalchemy import select

    from aiops.store.tables import BL

    with store.engine.connect() as conn:
        return list(conn.execute(select(BL).order_by(BL.c.day, BL.c.expires_at)).all())


@contextlib.contextmanager
def holding(hold: Callable[[threading.Event, threading.Event], None]) -> Iterator[None]:
    """`hold(taken, release)` in a thread: the block runs once it sets `taken`, and `release`
    is set when the block ends."""
    taken, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=hold, args=(taken, release))
    thread.start()
    try:
        assert taken.wait(10)
        yield
    finally:
        release.set()
        thread.join()


@contextlib.contextmanager
def held_lock(db_url: str, table: str, most_s: float) -> Iterator[None]:
    """Another connection holds a write lock until the block ends, or for `most_s` at most
    (so a writer that waits without a bound cannot hang the test): SQLite's (BEGIN
    EXCLUSIVE, in a thread), or PostgreSQL's on `table` (LOCK TABLE ... IN ACCESS EXCLUSIVE
    MODE; the server ends the session after `most_s` idle in its transaction)."""
    if db_url.startswith("sqlite"):
        import sqlite3

        def hold(taken: threading.Event, release: threading.Event) -> None:
            conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            taken.set()
            release.wait(most_s)
            conn.execute("ROLLBACK")
            conn.close()

        with holding(hold):
            yield
        return
    import psycopg

    conn = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        conn.execute(f"SET idle_in_transaction_session_timeout = {round(most_s * 1000)}")
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        with contextlib.suppress(psycopg.Error):  # the server may have ended the session
            conn.rollback()
        conn.close()


# --- the reconciler's verbs over a project directory ------------------------------------------


def plan_project(root: Path, *, url: str | None = None, **kw: Any) -> Any:
    """`commands.plan` of the project at `root` (its database, or `url`)."""
    from aiops import commands

    return commands.plan(commands.open_workspace(root, database_url=url), **kw)


def apply_project(root: Path, *, url: str | None = None, **kw: Any) -> Any:
    """`commands.apply` of the project at `root` (its database, or `url`)."""
    from aiops import commands

    return commands.apply(commands.open_workspace(root, database_url=url), **kw)
