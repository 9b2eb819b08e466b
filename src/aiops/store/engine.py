"""Engines (one per URL and process), URLs shown without secrets, driver errors translated
once, and the schema brought to the newest migration under a lock."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Engine,
    Table,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, make_url

from aiops import fastjson
from aiops.errors import (
    AiopsError,
    ConfigError,
    DatabaseUnavailable,
    LockBusy,
    RuntimeFailure,
    UserError,
)
from aiops.extras import require_extra

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

MIGRATE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"aiops:migrate").digest()[:8], "big",
                                  signed=True)
SCHEMA_HEAD = "0012"  # the newest file in migrations/versions (a test checks they agree)
_AT_HEAD: set[str] = set()  # URLs checked at SCHEMA_HEAD in this process

# --- engine ---------------------------------------------------------------------------------


def normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


_SECRET_PARAM = ("password", "passwd", "secret", "token", "key")


def redact(url: str) -> str:
    """The URL without its password, in the userinfo or in the query (`?password=`)."""
    try:
        parsed = make_url(url)
        hidden = {k: "***" if any(s in k.lower() for s in _SECRET_PARAM) else v
                  for k, v in parsed.query.items()}
        return (parsed.set(query=hidden).render_as_string(hide_password=True)
                .replace("%2A%2A%2A", "***"))
    except Exception:
        return "(unparseable database URL)"


_ENGINES: dict[tuple[str, float], Engine] = {}
# Set while a write that retries a lost connection itself (`aiops.store.patience`) takes a
# connection from the pool: PostgreSQL's pool then skips its ping (a round trip before every
# log write); a connection that died in the pool fails the write's first statement, which
# invalidates the pool, and the write is tried again on a new connection.
UNPINGED: ContextVar[bool] = ContextVar("aiops_unpinged", default=False)
_ENGINES_LOCK = threading.Lock()


def pg_lock_ms(wait_s: float) -> int:
    """PostgreSQL's lock_timeout for a wait of `wait_s`: whole milliseconds, at least 1
    (PostgreSQL reads 0 as "wait forever", not "do not wait"). A connection's and a
    transaction's are computed here alike, so that a wait equal to the connection's is seen
    to be (`aiops.store.patience`)."""
    return max(1, round(wait_s * 1000))


def engine_for(url: str, lock_timeout_s: float) -> Engine:
    key = (url, lock_timeout_s)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = _create_engine(url, lock_timeout_s)
        return engine


def dispose_engines(url: str | None = None) -> None:
    """Close pooled connections (of one URL, or all): before dropping a test schema, at exit."""
    with _ENGINES_LOCK:
        _AT_HEAD.difference_update({u for u in _AT_HEAD if url is None or u == normalise_url(url)})
        for key in [k for k in _ENGINES if url is None or k[0] == normalise_url(url)]:
            _ENGINES.pop(key).dispose()


def as_utc(value: datetime) -> datetime:
    """A datetime to write or compare: in UTC (naive means UTC). SQLite stores no zone and
    compares text, so a value in another zone would be read as the wrong instant."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_text(value: Any) -> str:
    """JSON columns' serializer: log rows are written by the thousand in a batch."""
    return fastjson.dumps(value).decode()


def upsert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT of `dialect` (sqlite or postgresql), which has ON CONFLICT. The dialect's
    module is imported here, for the database in use only: PostgreSQL's costs a SQLite
    command's start-up some 20 ms."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _quiet_pipeline(record: logging.LogRecord) -> bool:
    """psycopg warns on stderr ("error ignored terminating <Pipeline>") when a statement of a
    bulk insert fails; the failure itself is raised and handled (a log row the database
    refuses), so the warning is only noise."""
    return not str(record.msg).startswith("error ignored terminating")


def _create_engine(url: str, lock_timeout_s: float) -> Engine:
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(f"database URL {redact(url)} is not a URL; use sqlite:///PATH or "
                          "postgresql://USER@HOST/DB") from None
    driver = parsed.get_driver_name()
    if parsed.get_backend_name() == "postgresql" and driver != "psycopg":
        raise ConfigError(f"database URL {redact(url)}: driver `{driver}` is not available; "
                          "aiops uses psycopg 3: write postgresql://USER@HOST/DB")
    if parsed.get_backend_name() == "postgresql":
        require_extra("psycopg", "postgres", f"the PostgreSQL database {redact(url)}")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"database {redact(url)}: cannot create the directory "
                                  f"{folder} ({exc.strerror or exc}); fix the path or its "
                                  "permissions") from None
        # JSON columns are text on SQLite, decoded here (a plan reads every version's
        # content): pydantic-core's parser, as fastjson's, reads them 2-3x faster.
        engine = create_engine(url, connect_args={"timeout": lock_timeout_s},
                               json_serializer=_json_text, json_deserializer=fastjson.loads)

        busy_ms = round(lock_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _connect(dbapi: Any, record: Any) -> None:
            dbapi.isolation_level = None  # we emit BEGIN ourselves (see _begin)
            cur = dbapi.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            record.info["busy_ms"] = busy_ms

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers take SQLite's write lock up front: BEGIN IMMEDIATE waits (busy timeout)
            # instead of failing half-way through a transaction. A transaction may wait less
            # than the engine's busy timeout (`sqlite_busy_s`: what is left of a patience);
            # the pooled connection gets the engine's back at its next transaction.
            options = conn.get_execution_options()
            wait_ms = round(options["sqlite_busy_s"] * 1000) if "sqlite_busy_s" in options \
                else busy_ms
            if conn.info.get("busy_ms") != wait_ms:
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms}")
                conn.info["busy_ms"] = wait_ms
            conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', '')}".strip())

        return engine
    if parsed.get_backend_name() == "postgresql":
        logging.getLogger("psycopg").addFilter(_quiet_pipeline)
        pg = create_engine(url, pool_pre_ping=True, json_serializer=_json_text)
        ping = pg.dialect.do_ping

        def _ping(dbapi: Any) -> bool:
            return True if UNPINGED.get() else ping(dbapi)

        pg.dialect.do_ping = _ping  # type: ignore[method-assign,assignment]

        lock_ms = pg_lock_ms(lock_timeout_s)

        @event.listens_for(pg, "connect")
        def _connect(dbapi: Any, record: Any) -> None:
            from psycopg.types.json import set_json_loads

            set_json_loads(fastjson.loads, dbapi)  # psycopg decodes jsonb: as for SQLite
            # Every statement waits for a lock at most the engine's lock timeout, as SQLite's
            # busy timeout bounds it: a write of one statement needs no transaction of its
            # own to set it (`aiops.store.patience`); a transaction may set another (SET LOCAL).
            dbapi.execute(f"SET lock_timeout = '{lock_ms}ms'")
            dbapi.commit()
            record.info["lock_timeout_ms"] = lock_ms

        return pg
    raise ConfigError(f"unsupported database {parsed.get_backend_name()!r} in {redact(url)}; "
                      "aiops supports sqlite and postgresql")


FUNCTION_FILE = "the function file"


@contextlib.contextmanager
def db_errors(url: str, source: str = FUNCTION_FILE) -> Iterator[None]:
    """Translate driver errors once, here (`translate`)."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        raise translate(exc, url, source) from None


def translate(exc: sa_exc.DBAPIError, url: str, source: str = FUNCTION_FILE) -> AiopsError:
    """What failed, against which database (no password). `source` names where refused text
    comes from (the function file for apply, an execution's input or output for a log row),
    so that the message says what to fix. No option is named: the commands differ (apply
    adds its --lock-timeout)."""
    where = f"database {redact(url)}"
    if is_lock_timeout(exc):
        return LockBusy(f"the {where} is locked by another writer (an `aiops apply` in "
                        "progress?) and the wait ran out; try again when it finishes")
    if is_missing_schema(exc):
        return ConfigError(f"{where}: {driver_detail(exc)}; its schema is not at this aiops's "
                           "revision: run `aiops db upgrade`")
    if isinstance(exc, sa_exc.ProgrammingError):  # permission denied, say: the set-up's fault
        return ConfigError(f"{where}: {driver_detail(exc)}")
    if is_untranslatable_text(exc):
        # The data's fault, not the database's: a UserError (watch does not retry it).
        return UserError(f"{where}: {refused_text(exc, source)}")
    if is_unreachable(exc):
        return DatabaseUnavailable(f"{where} does not answer: {driver_detail(exc)}")
    return RuntimeFailure(f"{where}: {driver_detail(exc)}")  # nothing was written


def is_unreachable(exc: BaseException) -> bool:
    """The database did not answer (a connection refused or lost, a server shutting down),
    as opposed to refusing what was sent."""
    if not isinstance(exc, sa_exc.DBAPIError) or is_lock_timeout(exc):
        return False
    state = getattr(exc.orig, "sqlstate", None)
    if state:
        return str(state)[:2] in ("08", "57")
    return exc.connection_invalidated or (
        isinstance(exc, sa_exc.OperationalError)
        and "sqlite" not in type(exc.orig).__module__)


def driver_detail(exc: BaseException) -> str:
    """The first line of what the driver said (SQLAlchemy's wrapper adds the statement)."""
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def is_untranslatable_text(exc: BaseException) -> bool:
    """PostgreSQL refused text: U+0000, or an escape it cannot translate (a lone surrogate)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in ("22P05", "22021")


def refused_text(exc: BaseException, source: str) -> str:
    return (f"{driver_detail(exc)} (PostgreSQL cannot store the character U+0000 or invalid "
            f"text in JSON: remove it from {source})")


_MISSING_SQLITE = ("no such table", "no such column", "has no column named")


def is_missing_schema(exc: BaseException) -> bool:
    """A table or column the statement names is not there: a database not migrated to this
    aiops's revision (PostgreSQL's undefined_table, undefined_column; SQLite's words)."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    if state is not None:
        return state in ("42P01", "42703")
    msg = str(orig if orig is not None else exc).lower()
    return any(m in msg for m in _MISSING_SQLITE)


def is_lock_timeout(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "55P03":  # lock_not_available
        return True
    msg = str(orig if orig is not None else exc).lower()
    return "database is locked" in msg or "database table is locked" in msg


# SQLSTATE classes that say "try again later", whatever the statement: connection exceptions,
# transaction rollbacks (serialization, deadlock), insufficient resources, operator
# intervention (a restarting server), system errors.
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_TRANSIENT_SQLITE = ("database is locked", "database table is locked", "disk i/o error",
                     "unable to open database")


def is_transient(exc: BaseException) -> bool:
    """The database was busy or unreachable (worth retrying the same statement), as opposed to
    refusing the statement's values or its schema."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or is_lock_timeout(exc):
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if state:
        return str(state)[:2] in _TRANSIENT_CLASSES
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    # No SQLSTATE: psycopg's failures to connect, and SQLite's operational errors.
    msg = driver_detail(exc).lower()
    return "sqlite" not in type(exc.orig).__module__ or any(m in msg for m in _TRANSIENT_SQLITE)


# --- migrations -----------------------------------------------------------------------------

MIGRATIONS = Path(__file__).parent.parent / "migrations"


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest migration, as Alembic reads it from migrations/versions."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)  # type: ignore[arg-type]
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The schema revision of the database (None: never migrated), without importing Alembic."""
    if not sa_inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _check_not_newer(url: str, rev: str | None) -> None:
    """Refuse a schema written by a newer aiops: no migration here can handle it."""
    if rev is None or rev == SCHEMA_HEAD:
        return
    from alembic.script import ScriptDirectory

    known = {s.revision for s in
             ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}  # type: ignore[arg-type]
    if rev not in known:
        raise ConfigError(f"database {redact(url)} is at schema revision {rev}, which this "
                          f"aiops does not know (its newest is {SCHEMA_HEAD}): a newer aiops "
                          "migrated it; install that newer aiops to use this database")


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (under a lock, so concurrent first uses wait)."""
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:  # the common case, without taking the write lock
        rev = current_revision(conn)
        if rev == SCHEMA_HEAD:
            return
        _check_not_newer(url, rev)
    migrate(engine, SCHEMA_HEAD)


def migrate(engine: Engine, revision: str) -> None:
    """Move the schema to `revision`, forward or back (one transaction, under the migration
    lock; SQLite's foreign keys checked before the commit)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    url = engine.url.render_as_string(hide_password=False)
    with _ENGINES_LOCK:  # a rare step: every URL is checked again
        _AT_HEAD.clear()
    with engine.connect() as conn, _tables_rewritable(conn):
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":  # another migration is waited for
                conn.execute(select(func.set_config("lock_timeout", "0", True)))
                conn.execute(select(func.pg_advisory_xact_lock(MIGRATE_LOCK_KEY)))
            rev = current_revision(conn)
            if rev == revision:
                return
            cfg = _alembic_config(conn)
            older = rev is not None and revision in {
                s.revision for s in ScriptDirectory.from_config(cfg).iterate_revisions(rev,
                                                                                    "base")}
            (command.downgrade if older else command.upgrade)(cfg, revision)
            _check_foreign_keys(conn, url)


@contextlib.contextmanager
def _tables_rewritable(conn: Connection) -> Iterator[None]:
    """SQLite alters a table by writing a new one (Alembic's batch mode: copy, drop the old,
    rename), and dropping a table that others refer to fails while foreign keys are enforced:
    they are off meanwhile (a pragma SQLite takes only outside a transaction, hence on the
    driver's connection), and checked before the commit (`_check_foreign_keys`)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(conn: Connection, url: str) -> None:
    if conn.dialect.name != "sqlite":
        return  # PostgreSQL enforces them throughout
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        shown = "; ".join(f"{r[0]} row {r[1]} -> {r[2]}" for r in broken[:5])
        raise RuntimeFailure(f"database {redact(url)}: the migration would leave rows that "
                             f"refer to missing ones ({len(broken)}: {shown}); nothing was "
                             "changed")


def ensure_schema(engine: Engine, url: str, migrate: bool | None) -> None:
    """Upgrade the schema (`migrate`; None: SQLite only), or check that it is at the newest
    revision; once per URL and process."""
    with db_errors(url):
        if migrate is None:
            migrate = engine.dialect.name == "sqlite"
        if migrate:
            upgrade(engine)
        elif url not in _AT_HEAD:
            with engine.connect() as conn:
                rev = current_revision(conn)
            _check_not_newer(url, rev)
            if rev != SCHEMA_HEAD:
                raise ConfigError(f"database {redact(url)} is at schema revision "
                                  f"{rev or 'none (empty)'}, not {SCHEMA_HEAD}; "
                                  "run `aiops db upgrade`")
        _AT_HEAD.add(url)
