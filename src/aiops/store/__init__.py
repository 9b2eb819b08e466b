"""The database: queries, records, the lock. This package is the only one that imports
SQLAlchemy.

Interface for the runner, the API and the reconciler (stable; sync SQLAlchemy 2):

    store = open_store(url)                 # postgresql:// -> psycopg 3; sqlite file created and
                                            # migrated on first use (PostgreSQL: `aiops db upgrade`)
    dv = store.resolve("summarize", "1")    # DeployedVersion; selector None | "1.2.0" | "1" | "1.2"
                                            # NotFoundError lists versions; UserError if archived
    dv.content                              # fingerprint.behaviour_content: all it takes to run
    store.insert_logs([LogRow(...), ...])   # one idempotent executemany -> LogWriteReport
    store.write_pending_logs()              # rows spooled by earlier commands (pending_logs=)
    pool = store.sync_budget_lease(sync, size)  # a budget lease: settle, resize (aiops.budgets)
    store.recent_logs("summarize", 50, status="error", since=datetime)   # -> list[LogRecord]
    store.window_stats(["summarize"], since, until)   # {name: stats.WindowStats}, from rollups
    store.stats(ids, since, until, by=, step_minutes=)  # [rollups.Sums]: grouped, time series
    store.stats_cells(ids, since, until, step_minutes)  # [rollups.Cell]: summed over functions
    store.stats_top(ids, since, until, n)  # the n of most cost, of most errors: rollups.Ranked
    store.revision()                        # id of the newest apply: a key to cache resolve()
    store.read_state(project)               # plan.DeployedState, in a fixed number of queries
    with store.writer(lock_timeout_s=30) as w:   # lock + one transaction (commit on exit)
        w.read_state(project); w.write(batch); w.record_run(...)

Tables and their columns: `aiops.store.tables`; engines, URLs and migrations:
`aiops.store.engine`; log rows and their spool: `aiops.store.logrows`; the records it reads
and writes (DeployedVersion, LogRow, LogRecord), which hold no SQL: `aiops.records`. Log
writes and lease syncs wait for a locked or unreachable database within one bound
(`aiops.store.patience`).

Budgets: calls_used / usd_spent are settled; calls_reserved / usd_reserved are the sum of the
day's budget leases, which processes take, resize and give back in one transaction on the
counter's row (`aiops.store.leases`), so concurrent workers cannot overspend.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from aiops.budgets import Amount, LeaseSync, Pool
from aiops.errors import NameTaken, NotFoundError, RuntimeFailure, UserError
from aiops.records import (
    Archive,
    Batch,
    FunctionColumns,
    FunctionUpdate,
    NewFunction,
    NewVersion,
    PointerUpdate,
    VersionRestore,
)
from aiops.records import DeployedVersion as DeployedVersion
from aiops.records import LogRecord as LogRecord
from aiops.records import LogRow as LogRow
from aiops.records import LogWriteReport as LogWriteReport
from aiops.spec import Semver
from aiops.stats import Subject, WindowStats, minute_of
from aiops.store import rollups
from aiops.store.engine import as_utc as _as_utc
from aiops.store.engine import (
    current_revision,
    db_errors,
    engine_for,
    ensure_schema,
    normalise_url,
    pg_lock_ms,
    redact,
    upsert,
)
from aiops.store.leases import sync_lease
from aiops.store.logrows import LogSink, Spool, spool_folder
from aiops.store.patience import PATIENCE_S, Patience
from aiops.store.tables import C, F, M, R, V
from aiops.store.users import ensure_user

if TYPE_CHECKING:  # the API's and the UI's parts load on first use: `aiops run` needs none
    from aiops.catalog import FunctionSummary, LogEntry, LogFilter, VersionSummary
    from aiops.monitoring.alerts import RuleState, Usage
    from aiops.plan import DeployedState
    from aiops.sessions import NewSession, SessionRecord
    from aiops.store import alerts, catalog, idempotency
    from aiops.store.gauges import FunctionGauges
    from aiops.tokens import NewToken, TokenRecord

T = TypeVar("T")
LOCK_KEY = int.from_bytes(hashlib.sha256(b"aiops:reconcile").digest()[:8], "big", signed=True)


# --- records --------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


# version column -> key of `content` it copies (plan.VERSION_COLUMNS are the content keys)
VERSION_COPIES = {"prompt_template": "prompt", "input_schema": "input_schema",
                  "output_schema": "output_schema", "provider": "provider", "model": "model",
                  "configuration": "configuration"}


def version_columns(content: dict[str, Any]) -> dict[str, Any]:
    return {column: content[key] for column, key in VERSION_COPIES.items()}


# The columns of a function row that copy its current version's columns of the same name
# (DESIGN §5: SQL readers find them on ai_functions). Every statement that sets the pointer
# sets them too, in SQL, from the version row (`_copies_of`).
FUNCTION_COPIES = ("version", "input_schema", "output_schema", "provider")


def _copies_of(version_id: Any) -> dict[str, Any]:
    """SET clauses: the function's copies of the version `version_id` (an SQL expression)."""
    return {column: select(V.c[column]).where(V.c.id == version_id).scalar_subquery()
            for column in FUNCTION_COPIES}


# --- the rows apply decided (aiops.records), as the tables take them -------------------------


def _function_columns(c: FunctionColumns) -> dict[str, Any]:
    return {"description": c.description, "status": c.status, "metadata": c.metadata,
            "limits": c.limits, "access": c.access, "alerts": c.alerts,
            "metadata_hash": c.metadata_hash}


def _new_function(r: NewFunction, first: NewVersion) -> dict[str, Any]:
    """The row of a new function; `first` is its version (written after it, in the same
    statement batch: the copies come from the record)."""
    copies = {column: version_columns(first.content)[column]
              for column in FUNCTION_COPIES if column != "version"}
    return {"id": uuid.UUID(r.id), "name": r.name, **_function_columns(r.columns),
            "version": first.version, **copies,
            "current_version_id": uuid.UUID(r.version_id),
            "reconciled_version_id": uuid.UUID(r.version_id), "managed_by": r.managed_by,
            "applied_at": r.now, "applied_commit": r.applied_commit, "created_at": r.now,
            "updated_at": r.now, "created_by": uuid.UUID(r.created_by),
            "updated_by": uuid.UUID(r.created_by)}


def _new_version(r: NewVersion) -> dict[str, Any]:
    return {"id": uuid.UUID(r.id), "function_id": uuid.UUID(r.function_id),
            "version": r.version, "behaviour_hash": r.behaviour_hash, "content": r.content,
            **version_columns(r.content), "git_commit": r.git_commit,
            "created_at": r.created_at, "created_by": uuid.UUID(r.created_by)}


# An UPDATE by executemany binds each row's values by name, and SQLAlchemy refuses a bound
# parameter named like a column: hence `_id` and `v_<column>`, the writer's own names.


def _version_restore(r: VersionRestore) -> dict[str, Any]:
    columns = {"content": r.content, **version_columns(r.content)}
    return {"_id": uuid.UUID(r.version_id), **{f"v_{k}": v for k, v in columns.items()}}


def _function_update(r: FunctionUpdate) -> dict[str, Any]:
    columns = {**_function_columns(r.columns), "managed_by": r.managed_by,
               "updated_at": r.now, "applied_at": r.now, "applied_commit": r.applied_commit,
               "updated_by": uuid.UUID(r.updated_by)}
    return {"_id": uuid.UUID(r.function_id), **{f"v_{k}": v for k, v in columns.items()}}


def _pointer_update(r: PointerUpdate) -> dict[str, Any]:
    return {"_id": uuid.UUID(r.function_id), "cur": uuid.UUID(r.version_id), "now": r.now,
            "commit": r.applied_commit, "by": uuid.UUID(r.updated_by)}


def _archive(r: Archive) -> dict[str, Any]:
    return {"_id": uuid.UUID(r.function_id), "now": r.now, "commit": r.applied_commit,
            "hash": r.metadata_hash, "by": uuid.UUID(r.updated_by)}


# --- the store ------------------------------------------------------------------------------


def open_store(url: str, *, migrate: bool | None = None, lock_timeout_s: float = 30.0,
               patience_s: float = PATIENCE_S, pending_logs: Path | None = None) -> Store:
    """Connect. `migrate`: None upgrades SQLite on first use and checks PostgreSQL's revision.
    `lock_timeout_s` is SQLite's busy timeout and apply's lock wait; `patience_s` bounds how
    long log writes and budget leases wait for a locked or unreachable database, in all
    (`aiops.store.patience`). `pending_logs` (a project's `.aiops/pending-logs`): where log
    rows go that the database did not take within that bound, for the next command to write
    (None: they are reported lost)."""
    url = normalise_url(url)
    engine = engine_for(url, lock_timeout_s)
    ensure_schema(engine, url, migrate)
    return Store(engine=engine, url=url, lock_timeout_s=lock_timeout_s, patience_s=patience_s,
                 pending_logs=pending_logs)


def _s(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite keeps no zone; we write UTC
        return value.replace(tzinfo=UTC)
    return value


def _iso(value: datetime | None) -> str | None:
    v = _utc(value)
    return v.isoformat() if v else None


def _copies_agree(dialect: str) -> Any:
    """SQL: the columns that copy parts of `content` still hold those parts (compared in the
    database, so a plan does not decode every copy)."""
    conds = []
    for column, key in VERSION_COPIES.items():
        col = V.c[column]
        if dialect == "postgresql":
            part = V.c.content[key]
            conds.append(part.as_string() == col if column in ("provider", "model")
                         else part == col)
        else:
            part = func.json_extract(V.c.content, f"$.{key}")
            conds.append(part == col if column in ("provider", "model")
                         else part == func.json(col))
    return and_(*conds)


# What a plan reads of a function row (not its copies of the current version: compared in SQL).
_STATE_COLUMNS = ("id", "name", "status", "description", "metadata", "limits", "access",
                  "alerts", "metadata_hash", "current_version_id", "reconciled_version_id",
                  "managed_by", "applied_at", "applied_commit")


def _function_copies_agree(dialect: str, version: Any) -> Any:
    """SQL: the function row's FUNCTION_COPIES equal `version`'s (the versions table,
    outer-joined); true without one."""
    conds = []
    for column in FUNCTION_COPIES:
        mine: Any = F.c[column]
        theirs: Any = version.c[column]
        if column in ("input_schema", "output_schema") and dialect != "postgresql":
            # SQLite: as JSON, not as text (the same text, as aiops writes them, is enough)
            conds.append(or_(mine == theirs, func.json(mine) == func.json(theirs)))
        else:
            conds.append(mine == theirs)
    return or_(version.c.id.is_(None), and_(*conds))


def _read_state(conn: Connection, project: str,
                names: frozenset[str] | None = None) -> DeployedState:
    """The whole deployed state in three queries, whatever the number of functions (the
    copies on either row compared with what they copy in SQL, not decoded here); with
    `names`, those functions' part of it (a preview of one function's change)."""
    from aiops.plan import DeployedState, StoredFunction, StoredVersion

    versions: dict[uuid.UUID, list[StoredVersion]] = {}
    version_rows = select(V.c.id, V.c.function_id, V.c.version, V.c.behaviour_hash,
                          V.c.content, V.c.git_commit, V.c.created_at,
                          _copies_agree(conn.dialect.name).label("copies_ok"))
    if names is not None:
        version_rows = version_rows.where(V.c.function_id.in_(
            select(F.c.id).where(F.c.name.in_(sorted(names)))))
    for r in conn.execute(version_rows):
        versions.setdefault(r.function_id, []).append(StoredVersion(
            id=str(r.id), version=r.version, behaviour_hash=r.behaviour_hash,
            content=r.content, git_commit=r.git_commit, created_at=_iso(r.created_at),
            copies_intact=bool(r.copies_ok)))
    functions = {}
    current = V.alias("current")
    function_rows = select(*(F.c[c] for c in _STATE_COLUMNS),
                           _function_copies_agree(conn.dialect.name, current).label("copies_ok")
                           ).outerjoin(current, current.c.id == F.c.current_version_id)
    managed_rows = select(M.c.name).where(M.c.project == project)
    if names is not None:
        function_rows = function_rows.where(F.c.name.in_(sorted(names)))
        managed_rows = managed_rows.where(M.c.name.in_(sorted(names)))
    for f in conn.execute(function_rows):
        functions[f.name] = StoredFunction(
            id=str(f.id), name=f.name, status=f.status,
            metadata={"description": f.description, "status": f.status,
                      "metadata": f.metadata, "limits": f.limits, "access": f.access,
                      "alerts": f.alerts},
            metadata_hash=f.metadata_hash, current_version_id=_s(f.current_version_id),
            reconciled_version_id=_s(f.reconciled_version_id), managed_by=f.managed_by,
            applied_at=_iso(f.applied_at), applied_commit=f.applied_commit,
            versions=tuple(versions.get(f.id, ())), copies_intact=bool(f.copies_ok))
    managed = frozenset(conn.execute(managed_rows).scalars())
    return DeployedState(functions=functions, managed=managed)


class Store:
    """One database. Thread-safe (an engine and its pool); cheap to keep for a process."""

    def __init__(self, *, engine: Engine, url: str, lock_timeout_s: float,
                 patience_s: float = PATIENCE_S, pending_logs: Path | None = None) -> None:
        self.engine = engine
        # The catalog's and the tokens' reads are one statement each: on PostgreSQL they run
        # in autocommit, the query alone, without a BEGIN and a ROLLBACK around it (two round
        # trips fewer a read; under READ COMMITTED a statement has its own snapshot either way).
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT") \
            if engine.dialect.name == "postgresql" else engine
        self.url = url
        self.lock_timeout_s = lock_timeout_s
        self._patience = Patience(engine, url, patience_s, lock_timeout_s)
        spool = Spool(spool_folder(pending_logs, url)) if pending_logs is not None else None
        self._logs = LogSink(self._patience, spool)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def display_url(self) -> str:
        return redact(self.url)

    # -- reading (planning gets only this) --

    def read_state(self, project: str, names: frozenset[str] | None = None) -> DeployedState:
        """What the database holds (`names`: of those functions alone)."""
        with db_errors(self.url), self.engine.connect() as conn:
            return _read_state(conn, project, names)

    def resolve(self, name: str, selector: str | None = None) -> DeployedVersion:
        """`name` (current), `name@1.2.0` (exact) or `name@1` / `name@1.2` (newest applied)."""
        with db_errors(self.url), self.engine.connect() as conn:
            f = conn.execute(select(F).where(F.c.name == name)).one_or_none()
            if f is None:
                names = list(conn.execute(select(F.c.name).order_by(F.c.name)).scalars())
                raise NotFoundError(_not_found_function(name, names))
            rows = conn.execute(select(V).where(V.c.function_id == f.id)).all()
        if f.status == "archived":
            raise UserError(f"{name} is archived and does not run; restore its file and "
                            "`aiops apply` to re-activate it")
        row = _pick(name, selector, f.current_version_id, rows)
        return DeployedVersion(function_id=str(f.id), version_id=str(row.id), name=name,
                               version=row.version, content=row.content,
                               git_commit=row.git_commit, status=f.status,
                               limits=f.limits or {}, access=f.access or {})

    def _read(self, query: Callable[..., T], *args: Any, **kw: Any) -> T:
        with db_errors(self.url), self._reader.connect() as conn:
            return query(conn, *args, **kw)

    # The catalog's reads (aiops.store.catalog): what the API and the web UI show.

    def function_summaries(self, *, after: str | None, limit: int, status: str | None = None,
                           search: str | None = None,
                           view_groups: Sequence[str] | None = None) -> list[FunctionSummary]:
        from aiops.store import catalog
        return self._read(catalog.function_summaries, after=after, limit=limit, status=status,
                          search=search, view_groups=view_groups)

    def find_function(self, ref: str) -> catalog.FunctionRow | None:
        """The function whose id or name is `ref`, with its current version's content."""
        from aiops.store import catalog
        return self._read(catalog.find_function, ref)

    def version_summaries(self, function_id: str,
                          current_version_id: str | None) -> list[VersionSummary]:
        from aiops.store import catalog
        return self._read(catalog.version_summaries, function_id, current_version_id)

    def applied_hashes(self, function_ids: Sequence[str]
                       ) -> dict[str, tuple[str | None, str | None, str]]:
        from aiops.store import catalog
        return self._read(catalog.applied_hashes, function_ids)

    def version_content(self, version_id: str) -> dict[str, Any]:
        from aiops.store import catalog
        return self._read(catalog.version_content, version_id)

    def log_entries(self, function_id: str, *, where: LogFilter,
                    before: tuple[datetime, str] | None, limit: int) -> list[LogEntry]:
        from aiops.store import catalog
        return self._read(catalog.log_entries, function_id, where=where, before=before,
                          limit=limit)

    def log_entry(self, function_id: str, log_id: str) -> LogEntry | None:
        from aiops.store import catalog
        return self._read(catalog.log_entry, function_id, log_id)

    # API tokens (aiops.store.tokens, aiops.tokens).

    def create_token(self, token: NewToken, *, user: str, creator: str) -> TokenRecord:
        """Store a token for the user `user` names, made by `creator` (actors: `Name
        <email>`, an email or a name; `aiops.actors`); NameTaken when a token that is not
        revoked has its name (checked first, and by the unique index when two race)."""
        from aiops.store import tokens
        taken = NameTaken(f"a token named {token.name} exists; revoke it first (`aiops token "
                          f"revoke {token.name}`) or choose another name")
        try:
            with db_errors(self.url), self.engine.begin() as conn:
                if tokens.active_name_taken(conn, token.name):
                    raise taken
                return tokens.insert_token(conn, token, user_id=str(ensure_user(conn, user)),
                                           created_by=str(ensure_user(conn, creator)))
        except RuntimeFailure:
            if self._read(tokens.active_name_taken, token.name):
                raise taken from None
            raise

    def token_for_check(self, key_id: str) -> tuple[TokenRecord, str] | None:
        from aiops.store import tokens
        return self._read(tokens.token_for_check, key_id)

    def tokens(self, *, include_revoked: bool = False, after: tuple[str, str] | None = None,
               limit: int | None = None, day: date | None = None) -> list[TokenRecord]:
        """Tokens by (name, key id), past `after`, at most `limit`, each with what it used of
        its daily quotas on `day` (today, UTC)."""
        from aiops.store import tokens
        return self._read(tokens.list_tokens, include_revoked=include_revoked, after=after,
                          limit=limit, day=day or datetime.now(UTC).date())

    def token_usage(self, token_id: str, day: date) -> tuple[int, float]:
        """What the token's calls used of its daily quotas on `day` (UTC): (calls, USD)."""
        from aiops.store import tokens
        return self._read(tokens.usage, token_id, day)

    def revoke_token(self, ref: str, now: datetime) -> TokenRecord:
        """Revoke the token whose key id or name is `ref` (not revoked yet)."""
        from aiops.store import tokens
        with db_errors(self.url), self.engine.begin() as conn:
            found = tokens.find_tokens(conn, ref)
            if not found:
                raise NotFoundError(f"no token with key id or name {ref} (or it is revoked "
                                    "already); `aiops token list` shows them")
            [token] = found if len(found) == 1 else [t for t in found if t.key_id == ref]
            tokens.revoke(conn, token.id, now)
        return replace(token, revoked_at=now)

    def touch_token(self, token_id: str, now: datetime) -> None:
        from aiops.store import tokens
        with db_errors(self.url), self.engine.begin() as conn:
            tokens.touch(conn, token_id, now)

    # Web UI sessions (aiops.store.sessions, aiops.sessions).

    def create_session(self, session: NewSession) -> None:
        from aiops.store import sessions
        with db_errors(self.url), self.engine.begin() as conn:
            sessions.insert_session(conn, session)

    def session(self, id_hash: str) -> tuple[SessionRecord, TokenRecord] | None:
        """The session whose cookie's secret hashes to `id_hash`, with its token."""
        from aiops.store import sessions
        return self._read(sessions.find_session, id_hash)

    def end_session(self, id_hash: str) -> None:
        from aiops.store import sessions
        with db_errors(self.url), self.engine.begin() as conn:
            sessions.delete_session(conn, id_hash)

    # Idempotency keys (aiops.store.idempotency): each step its own short transaction.

    def claim_idempotency_key(self, *, token_id: str, key: str, fingerprint: str, log_id: str,
                              lease_s: float, ttl_s: float) -> idempotency.ClaimRow:
        from aiops.store import idempotency
        with db_errors(self.url), self.engine.begin() as conn:
            return idempotency.claim(conn, token_id=token_id, key=key, fingerprint=fingerprint,
                                     log_id=log_id, lease_s=lease_s, ttl_s=ttl_s)

    def finish_idempotency_key(self, *, token_id: str, key: str, log_id: str, status_code: int,
                               content_type: str, response: bytes) -> None:
        from aiops.store import idempotency
        with db_errors(self.url), self.engine.begin() as conn:
            idempotency.finish(conn, token_id=token_id, key=key, log_id=log_id,
                               status_code=status_code, content_type=content_type,
                               response=response)

    def release_idempotency_key(self, *, token_id: str, key: str, log_id: str) -> None:
        from aiops.store import idempotency
        with db_errors(self.url), self.engine.begin() as conn:
            idempotency.release(conn, token_id=token_id, key=key, log_id=log_id)

    def schema_revision(self) -> str | None:
        """The database's schema revision, read now (a query: it fails when the database does
        not answer)."""
        return self._read(current_revision)

    def revision(self) -> str | None:
        """The id of the newest reconcile run: a cheap key for caching resolved versions
        (it changes whenever an apply writes)."""
        with db_errors(self.url), self.engine.connect() as conn:
            rid = conn.execute(select(R.c.id).order_by(R.c.finished_at.desc()).limit(1)).scalar()
        return _s(rid)

    def last_run(self) -> dict[str, Any] | None:
        with db_errors(self.url), self.engine.connect() as conn:
            r = conn.execute(select(R).order_by(R.c.finished_at.desc()).limit(1)).one_or_none()
        if r is None:
            return None
        return {"id": str(r.id), "actor": r.actor, "git_commit": r.git_commit,
                "finished_at": _utc(r.finished_at), "duration_ms": r.duration_ms,
                "counts": r.counts, "status": r.status}

    def recent_logs(self, name: str | None, limit: int = 50, status: str | None = None,
                    since: datetime | None = None) -> list[LogRecord]:
        """The newest log rows of a function (of every function when `name` is None), newest
        first."""
        from aiops.catalog import LogFilter
        from aiops.store import catalog
        q = catalog.logs_query(name=name, where=LogFilter(status=status, since=since),
                               limit=limit)
        with db_errors(self.url), self.engine.connect() as conn:
            return [_log_record(r) for r in conn.execute(q)]

    # -- stats, from the rollups (aiops.store.rollups), never from the log table --

    def window_stats(self, names: Sequence[str] | None, since: datetime,
                     until: datetime | None = None) -> dict[str, WindowStats]:
        """The stats of each function over the window [since, until) (until None: up to
        now), read from the per-minute rollups in one query, whatever the number of
        executions.

        `names`: the functions (None: every function in the database); a name with no
        function row is left out. Every function asked for is in the answer, with zero
        calls when it ran none in the window. A window is whole minutes: an execution counts
        when the minute it was logged in starts in [since, until), since rounded down to its
        minute (an edge before the compaction mark widens to its whole hour). `WindowStats` gives calls, errors,
        errors_by_kind, error_rate (None without calls), p50_ms / p95_ms / p99_ms (from the
        latency buckets, within latency.ERROR_BOUND; None without latencies),
        input_tokens, output_tokens, cost_usd (summed exactly, in nano-dollars)."""
        with db_errors(self.url), self.engine.connect() as conn:
            q = select(F.c.id, F.c.name)
            if names is not None:
                q = q.where(F.c.name.in_(list(names)))
            ids = {str(r.id): r.name for r in conn.execute(q)}
            found = rollups.sums(conn, None if names is None else list(ids), since, until)
        out = dict.fromkeys(sorted(ids.values()), WindowStats())
        for s in found:
            if s.function_id in ids:
                out[ids[s.function_id]] = s.stats
        return out

    def stats(self, function_ids: Sequence[str] | None, since: datetime,
              until: datetime | None = None, *, by: str | None = None,
              step_minutes: int | None = None, buckets: bool = True) -> list[rollups.Sums]:
        """The rollups of the window summed per function (only `function_ids`, when given),
        per `by` (version, provider, model or day) and per step (`aiops.store.rollups`);
        `buckets` False: without the latency histogram."""
        with db_errors(self.url), self.engine.connect() as conn:
            return rollups.sums(conn, function_ids, since, until, by=by,
                                step_minutes=step_minutes, buckets=buckets)

    def stats_cells(self, function_ids: Sequence[str] | None, since: datetime,
                    until: datetime, step_minutes: int) -> list[rollups.Cell]:
        """The rollups of the window summed over the functions (only `function_ids`, when
        given) per version, provider, model and step (`aiops.store.rollups.cells`)."""
        return self._read(rollups.cells, function_ids, since, until, step_minutes)

    def stats_top(self, function_ids: Sequence[str] | None, since: datetime, until: datetime,
                  n: int) -> tuple[list[rollups.Ranked], list[rollups.Ranked]]:
        """The `n` functions of most cost and of most errors over the window, ranked in SQL
        (`aiops.store.rollups.top`)."""
        return self._read(rollups.top, function_ids, since, until, n)

    def stats_subjects(self, ref: str | None, day: date,
                       ids: Sequence[str] | None = None) -> list[Subject]:
        """The function `ref` names (id or name; every function for None; only `ids` when
        given), with its access lists, limits and the usage counters of `day`."""
        return self._read(rollups.subjects, ref, day, ids)

    def calls_per_step(self, function_ids: Sequence[str], since: datetime, until: datetime,
                       step_minutes: int) -> dict[str, dict[int, int]]:
        """Calls per function and step (`aiops.store.rollups.calls_per_step`)."""
        return self._read(rollups.calls_per_step, function_ids, since, until, step_minutes)

    def backfill_rollups(self) -> int:
        """Recompute the rollups from every log row (idempotent): the executions counted."""
        with db_errors(self.url), self.engine.begin() as conn:
            return rollups.backfill(conn)

    def compact_rollups(self, before: datetime) -> int:
        """Delete the per-minute rollups before the hour of `before` (the hourly rows hold
        their sums); the number of rows deleted. Windows reaching before it are then read in
        whole hours."""
        with db_errors(self.url), self.engine.begin() as conn:
            return rollups.compact(conn, minute_of(_as_utc(before)))

    def log(self, log_id: str) -> LogRecord | None:
        """One log row by its id (a UUID), or None."""
        from aiops.store import catalog
        with db_errors(self.url), self.engine.connect() as conn:
            row = conn.execute(catalog.logs_query(log_id=log_id)).first()
        return None if row is None else _log_record(row)

    # -- the runner's writes (no reconcile lock: they touch no reconciled row) --

    def insert_logs(self, rows: Sequence[LogRow]) -> LogWriteReport:
        """Write log rows: normalised, idempotent, a refused row stored alone, a locked or
        unreachable database waited for, rows still not written kept in the pending-logs
        spool (`aiops.store.logrows`). The first call writes the spooled rows too."""
        return self._logs(rows)

    def write_pending_logs(self) -> LogWriteReport:
        """Write the log rows earlier commands spooled (a no-op without any)."""
        return self._logs([])

    def sync_budget_lease(self, sync: LeaseSync, size: Callable[[Pool], Amount]) -> Pool:
        """Settle a budget lease's spending and resize it, in one transaction; sweeps the
        function's expired leases first (`aiops.store.leases`). A locked or unreachable
        database is waited for, as for log rows."""

        def attempt(deadline: float) -> Pool:
            with self._patience.transaction(deadline) as conn:
                return sync_lease(conn, sync, size)

        with db_errors(self.url):
            return self._patience(attempt)

    def function_gauges(self, day: date) -> list[FunctionGauges]:
        """Each function's budget, its usage on `day` and its firing alerts (/metrics)."""
        from aiops.store.gauges import function_gauges
        with db_errors(self.url), self.engine.connect() as conn:
            return function_gauges(conn, day)

    def usage(self, function_id: str, day: date) -> dict[str, Any] | None:
        with db_errors(self.url), self.engine.connect() as conn:
            r = conn.execute(select(C).where(C.c.function_id == uuid.UUID(function_id),
                                             C.c.day == day)).one_or_none()
        return dict(r._mapping) if r else None

    # -- alerts (aiops.store.alerts; the decisions: aiops.monitoring.alerts) --

    def alert_rule_rows(self) -> list[alerts.RuleRow]:
        """Functions that have alert rules (not archived), by name."""
        from aiops.store import alerts
        return self._read(alerts.rule_rows)

    def daily_usage(self, function_ids: Sequence[str], day: date) -> dict[str, Usage]:
        """Settled usage of the functions' daily limits on `day` (UTC)."""
        from aiops.store import alerts
        return self._read(alerts.usage_today, function_ids, day)

    def alert_states(self) -> dict[tuple[str, str], RuleState]:
        from aiops.store import alerts
        return self._read(alerts.read_states)

    def record_alert_evaluation(
            self, decide: Callable[[dict[tuple[str, str], RuleState], datetime | None],
                                   alerts.Evaluation | None], *, holder: str, now: datetime
    ) -> alerts.Evaluation | None:
        """Under the evaluator's lock, in one transaction: read the states and when the last
        evaluation ran, `decide`, and write what it decided (None: nothing, e.g. another
        replica evaluated within the interval)."""
        from aiops.store import alerts
        with db_errors(self.url), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if self.dialect == "postgresql":
                    wait_ms = pg_lock_ms(self.lock_timeout_s)
                    conn.execute(select(func.set_config("lock_timeout", f"{wait_ms}ms", True)))
                last = alerts.lock_evaluator(conn)
                ev = decide(alerts.read_states(conn), last)
                if ev is not None:
                    alerts.write_evaluation(conn, ev, holder=holder, now=now)
                return ev

    def claim_alert_notifications(self, *, now: datetime, until: datetime,
                                  limit: int) -> list[alerts.Claimed]:
        from aiops.store import alerts
        with db_errors(self.url), self.engine.begin() as conn:
            return alerts.claim_due(conn, now=now, until=until, limit=limit)

    def settle_alert_notification(self, outbox_id: str, *, status: str, attempts: int,
                                  next_attempt_at: datetime | None, error: str | None,
                                  now: datetime) -> None:
        from aiops.store import alerts
        with db_errors(self.url), self.engine.begin() as conn:
            alerts.settle(conn, outbox_id, status=status, attempts=attempts,
                          next_attempt_at=next_attempt_at, error=error, now=now)

    def pending_alert_notifications(self) -> int:
        from aiops.store import alerts
        return self._read(alerts.pending_count)

    def alert_history(self, *, function_ids: Sequence[str] | None, limit: int,
                      before: tuple[datetime, str] | None = None) -> list[alerts.HistoryRow]:
        """Notifications, newest first, with their deliveries (of these functions only)."""
        from aiops.store import alerts
        return self._read(alerts.history, function_ids=function_ids, limit=limit,
                          before=before)

    # -- the reconciler's writes --

    @contextlib.contextmanager
    def writer(self, lock_timeout_s: float | None = None) -> Iterator[Writer]:
        """Take the reconcile lock and open one transaction; commit on a clean exit."""
        timeout = self.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        with db_errors(self.url), self.engine.connect() as conn:
            if self.dialect == "sqlite":  # the busy timeout is the engine's (open_store)
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if self.dialect == "postgresql":
                    wait_ms = pg_lock_ms(timeout)
                    conn.execute(select(func.set_config("lock_timeout", f"{wait_ms}ms", True)))
                    conn.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
                    conn.execute(select(func.set_config("lock_timeout", "0", True)))
                yield Writer(conn)


def _not_found_function(name: str, names: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean `{close[0]}`? " if close else ""
    listed = ", ".join(names[:20]) or "none; run `aiops apply` first"
    return f"no function `{name}` in the database; {hint}available: {listed}"


def _pick(name: str, selector: str | None, current: uuid.UUID | None, rows: Sequence[Any]) -> Any:
    applied = sorted(rows, key=lambda r: Semver(r.version))
    listed = ", ".join(r.version for r in applied) or "none"
    if not selector:
        row = next((r for r in rows if r.id == current), None)
        if row is None:
            raise NotFoundError(f"{name} has no current version; applied: {listed}")
        return row
    exact = next((r for r in rows if r.version == selector), None)
    if exact is not None:
        return exact
    parts = selector.split(".")
    if len(parts) < 3 and all(p.isdigit() for p in parts):
        want = tuple(int(p) for p in parts)
        matching = [r for r in applied if not Semver(r.version).pre
                    and (Semver(r.version).major, Semver(r.version).minor)[:len(want)] == want]
        if matching:
            return matching[-1]
    raise NotFoundError(f"{name}@{selector} is not applied; applied versions: {listed} "
                        f"(use {name}, {name}@X.Y.Z or {name}@X)")


def _log_record(r: Any) -> LogRecord:
    return LogRecord(id=str(r.id), function_id=str(r.function_id), version=r.version,
                     version_id=_s(r.version_id), status=r.status, input=r.input,
                     output=r.output, error=r.error, execution_time=r.execution_time,
                     created_by=_s(r.created_by), actor=r.actor, metadata=r.metadata or {},
                     provider=r.provider, cost_usd=r.cost_usd, input_tokens=r.input_tokens,
                     output_tokens=r.output_tokens, created_at=_utc(r.created_at) or _now(),
                     name=r.name)


class Writer:
    """Inside the lock and the transaction: read the state again, then write a Batch."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def read_state(self, project: str) -> DeployedState:
        return _read_state(self.conn, project)

    def ensure_user(self, actor: str) -> str:
        """The id of the user row of `actor` (`aiops.actors`), created when new."""
        return str(ensure_user(self.conn, actor))

    def write(self, batch: Batch) -> None:
        """Every row of `batch`, one executemany per kind. Every statement that moves a
        function's pointer, or rewrites its row or its current version, also sets the
        function's copies of that version (FUNCTION_COPIES) from the version row."""
        c = self.conn
        if batch.new_functions:
            firsts = {v.id: v for v in batch.new_versions}
            c.execute(insert(F), [_new_function(r, firsts[r.version_id])
                                  for r in batch.new_functions])
        if batch.new_versions:
            c.execute(insert(V), [_new_version(r) for r in batch.new_versions])
        if batch.version_restores:
            c.execute(update(V).where(V.c.id == bindparam("_id")).values(
                {k: bindparam(f"v_{k}") for k in ("content", *VERSION_COPIES)}),
                [_version_restore(r) for r in batch.version_restores])
            c.execute(update(F).where(F.c.current_version_id == bindparam("_id"))
                      .values(_copies_of(F.c.current_version_id)),
                      [{"_id": uuid.UUID(r.version_id)} for r in batch.version_restores])
        if batch.function_updates:
            rows = [_function_update(r) for r in batch.function_updates]
            keys = [k[2:] for k in rows[0] if k.startswith("v_")]
            values: dict[str, Any] = {k: bindparam(f"v_{k}") for k in keys}
            c.execute(update(F).where(F.c.id == bindparam("_id"))
                      .values({**values, **_copies_of(F.c.current_version_id)}), rows)
        if batch.pointer_updates:
            cur = bindparam("cur", type_=V.c.id.type)
            c.execute(update(F).where(F.c.id == bindparam("_id")).values(
                current_version_id=cur, reconciled_version_id=cur, **_copies_of(cur),
                updated_at=bindparam("now"), applied_at=bindparam("now"),
                applied_commit=bindparam("commit"), updated_by=bindparam("by")),
                [_pointer_update(r) for r in batch.pointer_updates])
        if batch.archives:
            c.execute(update(F).where(F.c.id == bindparam("_id")).values(
                status="archived", metadata_hash=bindparam("hash"), updated_at=bindparam("now"),
                applied_at=bindparam("now"), applied_commit=bindparam("commit"),
                updated_by=bindparam("by")),
                [_archive(r) for r in batch.archives])
        if batch.managed:
            c.execute(upsert(c.dialect.name, M).on_conflict_do_nothing(),
                      [{"project": r.project, "name": r.name,
                        "first_applied_at": r.first_applied_at} for r in batch.managed])

    def record_run(self, *, project: str, actor: str, user_id: str | None,
                   git_commit: str | None, started_at: datetime, counts: dict[str, int],
                   changes: list[dict[str, Any]], status: str = "applied") -> str:
        finished = _now()
        rid = uuid.uuid4()
        self.conn.execute(insert(R).values(
            id=rid, project=project, actor=actor,
            user_id=uuid.UUID(user_id) if user_id else None, git_commit=git_commit,
            started_at=started_at, finished_at=finished,
            duration_ms=(finished - started_at).total_seconds() * 1000, counts=counts,
            changes=changes, status=status))
        return str(rid)
