"""The tables, declared once for the ORM and used as Core tables for bulk statements.

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

import uuid
from datetime import date, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")
Tz = DateTime(timezone=True)
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JsonType, Any: JsonType, uuid.UUID: Uuid(), datetime: Tz}


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime]


class Function(Base):
    __tablename__ = "ai_functions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    current_version_id: Mapped[uuid.UUID | None]
    reconciled_version_id: Mapped[uuid.UUID | None]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata")
    metadata_hash: Mapped[str] = mapped_column(String(64))
    limits: Mapped[dict[str, Any]]
    access: Mapped[dict[str, Any]]
    alerts: Mapped[Any]
    managed_by: Mapped[str | None] = mapped_column(String(300))
    applied_at: Mapped[datetime | None]
    applied_commit: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    __table_args__ = (
        # Deferred: a new function and its first version are written in one transaction.
        ForeignKeyConstraint(["current_version_id"], ["ai_function_versions.id"],
                             use_alter=True, deferrable=True, initially="DEFERRED",
                             name="fk_ai_functions_current_version_id_ai_function_versions"),
    )


class Version(Base):
    __tablename__ = "ai_function_versions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    function_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ai_functions.id"))
    version: Mapped[str] = mapped_column(String(100))
    behaviour_hash: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]]
    prompt_template: Mapped[Any]
    input_schema: Mapped[dict[str, Any]]
    output_schema: Mapped[dict[str, Any]]
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    configuration: Mapped[dict[str, Any]]
    git_commit: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    __table_args__ = (UniqueConstraint("function_id", "version"),)


class Log(Base):
    __tablename__ = "ai_function_logs"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    function_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ai_functions.id"))
    version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ai_function_versions.id"))
    input: Mapped[Any | None]
    output: Mapped[Any | None]
    error: Mapped[Any | None]
    execution_time: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata")
    provider: Mapped[str | None] = mapped_column(String(100), index=True)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (Index("ix_ai_function_logs_function_id_created_at", "function_id",
                            "created_at"),
                      Index("ix_ai_function_logs_created_at", "created_at"))


class ReconcileRun(Base):
    __tablename__ = "reconcile_runs"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(300))
    actor: Mapped[str] = mapped_column(String(320))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
    counts: Mapped[dict[str, Any]]
    changes: Mapped[Any]
    status: Mapped[str] = mapped_column(String(20))


class ManagedFunction(Base):
    __tablename__ = "managed_functions"
    project: Mapped[str] = mapped_column(String(300), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    first_applied_at: Mapped[datetime]


class UsageCounter(Base):
    __tablename__ = "usage_counters"
    function_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ai_functions.id"),
                                                   primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    calls_reserved: Mapped[int] = mapped_column(Integer, default=0)
    calls_used: Mapped[int] = mapped_column(Integer, default=0)
    usd_reserved: Mapped[float] = mapped_column(Float, default=0.0)
    usd_spent: Mapped[float] = mapped_column(Float, default=0.0)


class BudgetLease(Base):
    __tablename__ = "budget_leases"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    function_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ai_functions.id"))
    day: Mapped[date] = mapped_column(Date)
    holder: Mapped[str] = mapped_column(String(200))
    calls: Mapped[int] = mapped_column(Integer)
    usd: Mapped[float] = mapped_column(Float)
    # Seconds since the epoch, on the database's clock: every holder's machine agrees on it.
    expires_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_budget_leases_function_id_expires_at", "function_id",
                            "expires_at"),)


def _table(model: type[Base]) -> Table:
    # DeclarativeBase types `__table__` as FromClause (a class may map any selectable);
    # every class here is declared with `__tablename__`, so it is a Table.
    return cast(Table, model.__table__)


# Core tables, for bulk statements (the ORM classes above are their typed declarations).
F, V, L = _table(Function), _table(Version), _table(Log)
U, R = _table(User), _table(ReconcileRun)
M, C = _table(ManagedFunction), _table(UsageCounter)
BL = _table(BudgetLease)
