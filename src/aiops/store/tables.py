"""The tables, declared as SQLAlchemy Core tables (no ORM: its import and its declarative
mapping cost a command start-up some 150 ms, and aiops writes and reads only through Core).

Tables (UUID, JSONB, timestamptz on PostgreSQL; portable types on SQLite):
- ai_functions: id, name (unique), description, status (draft|active|deprecated|archived),
  current_version_id -> ai_function_versions, reconciled_version_id (the pointer git last
  set; differs from current_version_id when someone moved it), metadata, metadata_hash, limits,
  access, alerts (operational settings live on the function row), managed_by (owning project),
  applied_at, applied_commit, created_at, updated_at, created_by -> users.
- ai_function_versions: id, function_id, version, behaviour_hash, content
  (= behaviour_content(spec): everything to run, schemas included), prompt_template,
  input_schema, output_schema, provider, model, configuration (copies of parts of content for
  SQL readers), git_commit, created_at, created_by; unique (function_id, version).
- ai_function_logs: id, function_id, version_id, input, output, error, execution_time (ms),
  status (ok|error), user_id, actor, created_at, metadata (model, attempts, git commit, prompt
  hash, ...), provider, cost_usd, input_tokens, output_tokens; index (function_id, created_at).
- users (stands in for auth.users), reconcile_runs, managed_functions (the ownership ledger of
  each project: what it has applied), usage_counters (function_id, day) for daily budgets:
  calls_used / usd_spent settled, calls_reserved / usd_reserved the sum of the day's leases.
- budget_leases: id, function_id, day, holder (host:pid), calls, usd, expires_at (seconds
  since the epoch on the database's clock): the slices of a day's budget that processes hold
  (aiops.budgets); index (function_id, expires_at) for the sweep of expired ones.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
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
metadata = MetaData(naming_convention=NAMING)


def _id() -> Column[Any]:
    return Column("id", Uuid(), primary_key=True)


def _tz(name: str, *, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> Column[Any]:
    return Column(name, Json(), nullable=nullable)


def _user(name: str) -> Column[Any]:
    return Column(name, Uuid(), ForeignKey("users.id"), nullable=True)


U = Table(
    "users", metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("email", String(320), unique=True, nullable=True),
    _tz("created_at"),
)

F = Table(
    "ai_functions", metadata,
    _id(),
    Column("name", String(63), unique=True, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("current_version_id", Uuid(), nullable=True),
    Column("reconciled_version_id", Uuid(), nullable=True),
    _json("metadata"),
    Column("metadata_hash", String(64), nullable=False),
    _json("limits"),
    _json("access"),
    _json("alerts"),
    Column("managed_by", String(300), nullable=True),
    _tz("applied_at", nullable=True),
    Column("applied_commit", String(64), nullable=True),
    _tz("created_at"),
    _tz("updated_at"),
    _user("created_by"),
    # Deferred: a new function and its first version are written in one transaction.
    ForeignKeyConstraint(["current_version_id"], ["ai_function_versions.id"],
                         use_alter=True, deferrable=True, initially="DEFERRED",
                         name="fk_ai_functions_current_version_id_ai_function_versions"),
)

V = Table(
    "ai_function_versions", metadata,
    _id(),
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
    _tz("created_at"),
    _user("created_by"),
    UniqueConstraint("function_id", "version"),
)

L = Table(
    "ai_function_logs", metadata,
    _id(),
    Column("function_id", Uuid(), ForeignKey("ai_functions.id"), nullable=False),
    Column("version_id", Uuid(), ForeignKey("ai_function_versions.id"), nullable=True),
    _json("input", nullable=True),
    _json("output", nullable=True),
    _json("error", nullable=True),
    Column("execution_time", Float, nullable=True),
    Column("status", String(10), nullable=False),
    _user("user_id"),
    Column("actor", String(320), nullable=True),
    _tz("created_at"),
    _json("metadata"),
    Column("provider", String(100), nullable=True, index=True),
    Column("cost_usd", Float, nullable=True),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Index("ix_ai_function_logs_function_id_created_at", "function_id", "created_at"),
    Index("ix_ai_function_logs_created_at", "created_at"),
)

R = Table(
    "reconcile_runs", metadata,
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
    "managed_functions", metadata,
    Column("project", String(300), primary_key=True),
    Column("name", String(63), primary_key=True),
    _tz("first_applied_at"),
)

C = Table(
    "usage_counters", metadata,
    Column("function_id", Uuid(), ForeignKey("ai_functions.id"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("calls_reserved", Integer, nullable=False, default=0),
    Column("calls_used", Integer, nullable=False, default=0),
    Column("usd_reserved", Float, nullable=False, default=0.0),
    Column("usd_spent", Float, nullable=False, default=0.0),
)

BL = Table(
    "budget_leases", metadata,
    _id(),
    Column("function_id", Uuid(), ForeignKey("ai_functions.id"), nullable=False),
    Column("day", Date, nullable=False),
    Column("holder", String(200), nullable=False),
    Column("calls", Integer, nullable=False),
    Column("usd", Float, nullable=False),
    # Seconds since the epoch, on the database's clock: every holder's machine agrees on it.
    Column("expires_at", Float, nullable=False),
    Index("ix_budget_leases_function_id_expires_at", "function_id", "expires_at"),
)
