"""The tables, declared as SQLAlchemy Core tables (no ORM: its import and its declarative
mapping cost a command start-up some 150 ms, and aiops writes and reads only through Core).

Tables (UUID, JSONB, timestamptz on PostgreSQL; portable types on SQLite). Every column of
the user's schema (DESIGN §5) is here under its name and meaning, with its defaults (ids by
the database, created_at / updated_at now(), status 'draft'); the rest is aiops's own.
- ai_functions: id, name (unique), description, status (draft|active|deprecated|archived),
  version, input_schema, output_schema, provider (copies of the current version's, set with
  the pointer by the store's writer: apply, rollback and drift restore keep them in step),
  current_version_id -> ai_function_versions (indexed), reconciled_version_id (the pointer
  git last set; differs from current_version_id when someone moved it), metadata,
  metadata_hash, limits, access, alerts (operational settings live on the function row),
  managed_by (owning project), applied_at, applied_commit, created_at, updated_at,
  created_by -> users (required), updated_by -> users (who last changed the row).
- ai_function_versions: id, function_id, version, behaviour_hash, content
  (= behaviour_content(spec): everything to run, schemas included), prompt_template,
  input_schema, output_schema, provider, model, configuration (copies of parts of content for
  SQL readers), git_commit, created_at, created_by -> users (required), metadata (the DDL's;
  aiops leaves it null); unique (function_id, version).
- ai_function_logs: id, function_id, version (the executed version's text), version_id,
  input (required; JSON null when there was none), output, error, execution_time (ms),
  status (ok|error), created_by -> users (required: the user who ran it), actor (the text it
  was given as), created_at, metadata (model, attempts, git commit, prompt hash, ...),
  provider, cost_usd, input_tokens, output_tokens; index (function_id, created_at).
- users (stands in for auth.users), reconcile_runs, managed_functions (the ownership ledger of
  each project: what it has applied), usage_counters (function_id, day) for daily budgets:
  calls_used / usd_spent settled, calls_reserved / usd_reserved the sum of the day's leases.
- budget_leases: id, function_id, day, holder (host:pid), calls, usd, expires_at (seconds
  since the epoch on the database's clock): the slices of a day's budget that processes hold
  (aiops.budgets); index (function_id, expires_at) for the sweep of expired ones.
- api_tokens: id, key_id (unique), secret_hash, name (unique among tokens not revoked), role
  (viewer|invoker|editor|admin), groups, user_id -> users, created_by -> users, created_at,
  expires_at, revoked_at, last_used_at, and the caller's quotas: rpm, daily_calls, daily_usd
  (aiops.tokens; the secret itself is never stored).
- ai_function_rollups: per function, minute (minutes since the Unix epoch, UTC; an hour's
  first minute once compacted), version, provider, model and outcome (ok or the error's
  kind): calls, input_tokens, output_tokens, cost_nusd (cost in whole nano-dollars), and the
  latency histogram b0..b53 (counts per bucket of aiops.latency); written with each log row
  (aiops.store.rollups); index (minute) for the stats of all functions.
- idempotency_keys: (token_id -> api_tokens, key) the primary key; fingerprint (sha256 of what
  the request asked), status (running|done), log_id (the execution's id, chosen before it
  runs), status_code, content_type and response (the answer's bytes, replayed as they were),
  created_at, locked_until and expires_at (seconds since the epoch on the database's clock:
  a running claim past locked_until may be taken over; a record past expires_at is gone);
  index on expires_at for the sweep (aiops.store.idempotency).
- token_usage (token_id, day) and token_leases: a token's daily quotas (daily_calls,
  daily_usd), kept as usage_counters and budget_leases keep a function's budget.
- ai_function_rollups_hourly: the same per hour (minute: the hour's first), written with the
  per-minute rows: long windows read hours, their ragged edges minutes.
- ui_sessions: id (sha256 of the cookie's secret), token_id -> api_tokens, csrf, created_at,
  expires_at (aiops.sessions; the secret itself is never stored).
- ai_function_rollup_marks: name -> minute; `compacted_before`: per-minute rows before that
  minute were deleted by compaction (windows reaching there are read in whole hours).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine


class Json(TypeDecorator[Any]):
    """JSON; JSONB on PostgreSQL. A decorator rather than `JSON().with_variant(JSONB())`, so
    that the PostgreSQL dialect is imported only when a PostgreSQL database is used."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}
# Every table. The migrations and their tests read `metadata` (below): these tables with the
# parts only DDL needs.
schema = MetaData(naming_convention=NAMING)


class NewId(FunctionElement[Any]):
    """A new random id, as the database makes it: the default of the ids of the tables of
    DESIGN §5, for SQL that inserts rows without one."""

    type = Uuid()
    inherit_cache = True


@compiles(NewId, "postgresql")
def _new_id_pg(element: NewId, compiler: SQLCompiler, **kw: Any) -> str:
    return "gen_random_uuid()"


@compiles(NewId, "sqlite")
def _new_id_sqlite(element: NewId, compiler: SQLCompiler, **kw: Any) -> str:
    # Parenthesised: SQLite takes an expression default only in parentheses (SQLAlchemy before
    # 2.0.36 does not add them).
    return "(lower(hex(randomblob(16))))"  # the 32 hex digits of a uuid, as SQLite stores one


def _id(*, default: bool = False) -> Column[Any]:
    """The primary key; `default`: the database makes one when none is given (DESIGN §5)."""
    return Column("id", Uuid(), primary_key=True, server_default=NewId() if default else None)


def _tz(name: str, *, nullable: bool = False, now: bool = False) -> Column[Any]:
    """A timestamptz; `now`: defaults to now() (DESIGN §5)."""
    return Column(name, DateTime(timezone=True), nullable=nullable,
                  server_default=func.now() if now else None)


def _json(name: str, *, nullable: bool = False) -> Column[Any]:
    return Column(name, Json(), nullable=nullable)


def _user(name: str, *, nullable: bool = True) -> Column[Any]:
    return Column(name, Uuid(), ForeignKey("users.id"), nullable=nullable)


U = Table(
    "users", schema,
    _id(),
    Column("name", String(200), nullable=False),
    Column("email", String(320), unique=True, nullable=True),
    _tz("created_at"),
)

F = Table(
    "ai_functions", schema,
    _id(default=True),
    Column("name", String(63), unique=True, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False, server_default="draft"),
    # Copies of the current version's columns (the store sets them with the pointer).
    Column("version", String(100), nullable=False),
    _json("input_schema"),
    _json("output_schema"),
    Column("provider", String(100), nullable=False),
    # Indexed: SQLite checks the deferred key of each version it points at by this column.
    Column("current_version_id", Uuid(), nullable=True, index=True),
    Column("reconciled_version_id", Uuid(), nullable=True),
    _json("metadata"),
    Column("metadata_hash", String(64), nullable=False),
    _json("limits"),
    _json("access"),
    _json("alerts"),
    Column("managed_by", String(300), nullable=True),
    _tz("applied_at", nullable=True),
    Column("applied_commit", String(64), nullable=True),
    _tz("created_at", now=True),
    _tz("updated_at", now=True),
    _user("created_by", nullable=False),
    _user("updated_by"),
    # Deferred: a new function and its first version are written in one transaction.
    ForeignKeyConstraint(["current_version_id"], ["ai_function_versions.id"],
                         use_alter=True, deferrable=True, initially="DEFERRED",
                         name="fk_ai_functions_current_version_id_ai_function_versions"),
)

V = Table(
    "ai_function_versions", schema,
    _id(default=True),
    Column("function_id", Uuid(), ForeignKey("ai_functions.id"), nullable=False),
    Column("version", String(100), nullable=False),
    Column("behaviour_hash", String(64), nullable=False),
    _json("content"),
    _json("prompt_template"),
    _json("input_schema"),
    _json("output_schema"),
    Column("provider", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    _json("configuration"),
    Column("git_commit", String(64), nullable=True),
    _tz("created_at", now=True),
    _user("created_by", nullable=False),
    _json("metadata", nullable=True),  # DESIGN §5's; aiops leaves it null
    UniqueConstraint("function_id", "version"),
)

L = Table(
    "ai_function_logs", schema,
    _id(default=True),
    Column("function_id", Uuid(), ForeignKey("ai_functions.id"), nullable=False),
    Column("version", String(100), nullable=False),  # the executed version's text
    Column("version_id", Uuid(), ForeignKey("ai_function_versions.id"), nullable=True),
    _json("input"),
    _json("output", nullable=True),
    _json("error", nullable=True),
    Column("execution_time", Float, nullable=True),
    Column("status", String(10), nullable=False),
    _user("created_by", nullable=False),  # the user who ran it
    Column("actor", String(320), nullable=True),  # as given: --actor, the OS user
    _tz("created_at", now=True),
    _json("metadata"),
    Column("provider", String(100), nullable=True, index=True),
    Column("cost_usd", Float, nullable=True),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Index("ix_ai_function_logs_function_id_created_at", "function_id", "created_at"),
    Index("ix_ai_function_logs_created_at", "created_at"),
)

R = Table(
    "reconcile_runs", schema,
    _id(),
    Column("project", String(300), nullable=False),
    Column("actor", String(320), nullable=False),
    _user("user_id"),
    Column("git_commit", String(64), nullable=True),
    _tz("started_at"),
    _tz("finished_at"),
    Column("duration_ms", Float, nullable=False),
    _json("counts"),
    _json("changes"),
    Column("status", String(20), nullable=False),
)

M = Table(
    "managed_functions", schema,
    Column("project", String(300), primary_key=True),
    Column("name", String(63), primary_key=True),
    _tz("first_applied_at"),
)

def _usage(name: str, owner: str, owners: str) -> Table:
    """A daily budget's counters: (owner, day) -> settled use and live reservations."""
    return Table(
        name, schema,
        Column(owner, Uuid(), ForeignKey(f"{owners}.id"), primary_key=True),
        Column("day", Date, primary_key=True),
        Column("calls_reserved", Integer, nullable=False, default=0),
        Column("calls_used", Integer, nullable=False, default=0),
        Column("usd_reserved", Float, nullable=False, default=0.0),
        Column("usd_spent", Float, nullable=False, default=0.0),
    )


def _leases(name: str, owner: str, owners: str) -> Table:
    """A daily budget's leases: the slices of a day that holders (processes) hold."""
    return Table(
        name, schema,
        _id(),
        Column(owner, Uuid(), ForeignKey(f"{owners}.id"), nullable=False),
        Column("day", Date, nullable=False),
        Column("holder", String(200), nullable=False),
        Column("calls", Integer, nullable=False),
        Column("usd", Float, nullable=False),
        # Seconds since the epoch, on the database's clock: every holder's machine agrees.
        Column("expires_at", Float, nullable=False),
        Index(f"ix_{name}_{owner}_expires_at", owner, "expires_at"),
    )


C = _usage("usage_counters", "function_id", "ai_functions")
BL = _leases("budget_leases", "function_id", "ai_functions")

T = Table(
    "api_tokens", schema,
    _id(),
    Column("key_id", String(16), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),  # sha256(key id, secret): aiops.tokens
    Column("name", String(100), nullable=False),
    Column("role", String(10), nullable=False),
    _json("groups"),
    Column("user_id", Uuid(), ForeignKey("users.id"), nullable=False),
    Column("created_by", Uuid(), ForeignKey("users.id"), nullable=False),
    _tz("created_at"),
    _tz("expires_at", nullable=True),
    _tz("revoked_at", nullable=True),
    _tz("last_used_at", nullable=True),
    Column("rpm", Integer, nullable=True),
    Column("daily_calls", Integer, nullable=True),
    Column("daily_usd", Float, nullable=True),
    # and ix_api_tokens_name_active: see `metadata`
)


def _amounts(*, errors: bool = False, buckets: bool = True) -> list[Any]:
    """The summed columns of a rollup table (`aiops.store.rollups`)."""
    from aiops.stats import BUCKET_COLUMNS

    return [
        Column("calls", Integer, nullable=False),
        *([Column("errors", Integer, nullable=False)] if errors else []),
        Column("input_tokens", BigInteger, nullable=False),
        Column("output_tokens", BigInteger, nullable=False),
        Column("cost_nusd", BigInteger, nullable=False),
        *(Column(b, Integer, nullable=False) for b in (BUCKET_COLUMNS if buckets else ())),
    ]


def _rollup_columns(prefix: str = "") -> list[Any]:
    from aiops.stats import KEY_LENGTHS

    return [
        Column("function_id", Uuid(), ForeignKey("ai_functions.id"), primary_key=True),
        Column("minute", Integer, primary_key=True),
        *(Column(k, String(n), primary_key=True) for k, n in KEY_LENGTHS.items()),
        *_amounts(),
        Index(f"ix_ai_function_rollups_{prefix}minute", "minute"),
    ]


def _across_columns() -> list[Any]:
    from aiops.stats import KEY_LENGTHS

    return [
        Column("minute", Integer, primary_key=True),
        Column("shard", SmallInteger, primary_key=True),
        *(Column(k, String(KEY_LENGTHS[k]), primary_key=True)
          for k in ("provider", "model", "outcome")),
        *_amounts(),
    ]


RU = Table("ai_function_rollups", schema, *_rollup_columns())
RH = Table("ai_function_rollups_hourly", schema, *_rollup_columns("hourly_"))
# The same summed over the functions, in shards (aiops.store.rollups): per minute and hour.
XM = Table("ai_rollups_across", schema, *_across_columns())
XH = Table("ai_rollups_across_hourly", schema, *_across_columns())
# Each function's amounts per hour alone (what ranks its top lists, its sparkline).
TH = Table(
    "ai_function_totals_hourly", schema,
    Column("function_id", Uuid(), ForeignKey("ai_functions.id"), primary_key=True),
    Column("minute", Integer, primary_key=True),
    *_amounts(errors=True, buckets=False),
    Index("ix_ai_function_totals_hourly_minute", "minute"),
)
RM = Table(
    "ai_function_rollup_marks", schema,
    Column("name", String(50), primary_key=True),
    Column("minute", Integer, nullable=False),
)
IK = Table(
    "idempotency_keys", schema,
    Column("token_id", Uuid(), ForeignKey("api_tokens.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(10), nullable=False),  # running | done
    Column("log_id", Uuid(), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("content_type", String(100), nullable=True),
    Column("response", LargeBinary, nullable=True),
    _tz("created_at"),
    # Seconds since the epoch, on the database's clock, as budget_leases.expires_at.
    Column("locked_until", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

# A token's daily quotas: the same ledger as a function's budget, owned by the token
# (aiops.budgets.TOKENS).
QU = _usage("token_usage", "token_id", "api_tokens")
QL = _leases("token_leases", "token_id", "api_tokens")

# Web UI sessions (aiops.sessions): the sha256 of the cookie's secret, the token it was
# signed in with (whose role and groups it carries), its CSRF token, its expiry.
UI = Table(
    "ui_sessions", schema,
    Column("id", String(64), primary_key=True),
    Column("token_id", Uuid(), ForeignKey("api_tokens.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    _tz("created_at"),
    _tz("expires_at"),
    Index("ix_ui_sessions_expires_at", "expires_at"),
)

# Alerts (aiops.monitoring.alerts): each rule's state, the history of its notifications, the
# outbox that delivers them, and the row whose lock makes one evaluator at a time.
AS = Table(
    "alert_states", schema,
    Column("function_id", Uuid(), ForeignKey("ai_functions.id"), primary_key=True),
    Column("rule", String(63), primary_key=True),
    Column("state", String(10), nullable=False),  # ok | pending | firing
    _tz("since", nullable=True),
    _tz("pending_since", nullable=True),
    _tz("fired_at", nullable=True),
    _tz("last_notified_at", nullable=True),
    Column("value", Float, nullable=True),
    _tz("evaluated_at", nullable=True),
)

AH = Table(
    "alert_history", schema,
    _id(),
    Column("function_id", Uuid(), ForeignKey("ai_functions.id"), nullable=False),
    Column("rule", String(63), nullable=False),
    Column("event", String(10), nullable=False),  # firing | resolved
    Column("severity", String(10), nullable=False),
    Column("value", Float, nullable=True),
    _tz("at"),
    _json("payload"),  # the event every receiver's message is built from
    Column("receivers", Integer, nullable=False),  # notifications queued for it
    Index("ix_alert_history_at", "at"),
    Index("ix_alert_history_function_id_at", "function_id", "at"),
)

AO = Table(
    "alert_outbox", schema,
    _id(),  # the webhook-id: the same on every attempt
    Column("history_id", Uuid(), ForeignKey("alert_history.id"), nullable=False),
    Column("receiver", String(63), nullable=False),
    Column("status", String(10), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    _tz("created_at"),
    _tz("next_attempt_at"),
    _tz("claimed_until", nullable=True),
    Column("claim", Uuid(), nullable=True),
    _tz("sent_at", nullable=True),
    Column("last_error", String(500), nullable=True),
    Index("ix_alert_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

AE = Table(
    "alert_evaluator", schema,
    Column("id", Integer, primary_key=True),  # one row: 1
    Column("holder", String(200), nullable=True),
    _tz("last_run_at", nullable=True),
)


_DDL_ONLY = threading.Lock()


def _with_ddl_only_parts() -> MetaData:
    # A name names one token that is not revoked (a revoked one's name can be used again).
    # The WHERE of a partial index is a dialect option, and naming one loads that dialect's
    # module (SQLAlchemy's PostgreSQL dialect: some 25 ms), which a run on SQLite never needs.
    with _DDL_ONLY:  # once, whichever thread reads it first
        if "ix_api_tokens_name_active" not in {i.name for i in T.indexes}:
            Index("ix_api_tokens_name_active", T.c.name, unique=True,
                  postgresql_where=text("revoked_at IS NULL"),
                  sqlite_where=text("revoked_at IS NULL"))
    return schema


def __getattr__(name: str) -> MetaData:
    """`metadata`: every table with the parts only DDL needs (a partial index), for the
    migrations (`alembic`'s autogenerate) and the tests that compare them with the code."""
    if name == "metadata":
        return _with_ddl_only_parts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
