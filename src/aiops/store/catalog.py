"""The catalog's reads: functions, their versions and their logs, a page at a time
(keyset pagination: each page starts after the last row of the one before, so a page costs
the same wherever it is). The records are `aiops.catalog`'s."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, type_coerce
from sqlalchemy.engine import Connection

from aiops.catalog import FunctionSummary, LogEntry, LogFilter, VersionSummary
from aiops.store.engine import as_utc
from aiops.store.tables import F, L, U, V


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _summary_query() -> Any:
    return (select(F.c.id, F.c.name, F.c.description, F.c.status, F.c.updated_at, F.c.access,
                   F.c.current_version_id, F.c.reconciled_version_id, V.c.version,
                   V.c.provider, V.c.model)
            .outerjoin(V, V.c.id == F.c.current_version_id))


def _summary(r: Any) -> FunctionSummary:
    return FunctionSummary(
        id=str(r.id), name=r.name, description=r.description or "", status=r.status,
        version=r.version, provider=r.provider, model=r.model, updated_at=_utc(r.updated_at),
        access=dict(r.access or {}),
        sync="in_sync" if r.current_version_id == r.reconciled_version_id else "pointer_moved")


def function_summaries(conn: Connection, *, after: str | None, limit: int,
                       status: str | None, search: str | None,
                       view_groups: Sequence[str] | None = None) -> list[FunctionSummary]:
    """Functions by name, after `after`; `search` is a case-insensitive substring of the
    name or the description; `view_groups`: only those whose `access.view` list is absent
    (everyone) or names one of these."""
    q = _summary_query().order_by(F.c.name).limit(limit)
    if after is not None:
        q = q.where(F.c.name > after)
    if status is not None:
        q = q.where(F.c.status == status)
    if search:
        needle = search.lower()
        q = q.where(or_(F.c.name.contains(needle, autoescape=True),
                        F.c.description.ilike(f"%{_escape_like(needle)}%", escape="/")))
    if view_groups is not None:
        q = q.where(_view_listed(conn.dialect.name, list(view_groups)))
    return [_summary(r) for r in conn.execute(q).all()]


def _view_listed(dialect: str, groups: list[str]) -> Any:
    """SQL: `aiops.access.listed(access, "view")` holds one of `groups` (an absent or null
    list is everyone's). The verbs still decide with `aiops.access.may` on what this returns;
    this spares reading the rows a caller may not view."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB, array

        view = type_coerce(F.c.access, JSONB)["view"]
        return or_(view.is_(None), func.jsonb_typeof(view) == "null",
                   view.has_any(array(groups)))
    items = func.json_each(F.c.access, "$.view").table_valued("value")
    return or_(func.json_extract(F.c.access, "$.view").is_(None),
               exists(select(1).select_from(items).where(items.c.value.in_(groups))))


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


@dataclass(frozen=True, kw_only=True)
class FunctionRow:
    """A function with what its detail shows beyond the summary."""

    summary: FunctionSummary
    current_version_id: str | None
    metadata_hash: str
    metadata: dict[str, Any]
    limits: dict[str, Any]
    alerts: Any
    managed_by: str | None
    applied_at: datetime | None
    applied_commit: str | None
    content: dict[str, Any] | None  # the current version's


def find_function(conn: Connection, ref: str) -> FunctionRow | None:
    """The function whose id (a UUID) or name is `ref`."""
    q = _summary_query().add_columns(F.c.metadata, F.c.limits, F.c.alerts, F.c.managed_by,
                                     F.c.applied_at, F.c.applied_commit, F.c.metadata_hash,
                                     V.c.content)
    try:
        q = q.where(F.c.id == uuid.UUID(ref))
    except ValueError:
        q = q.where(F.c.name == ref)
    r = conn.execute(q).one_or_none()
    if r is None:
        return None
    return FunctionRow(summary=_summary(r), current_version_id=_s(r.current_version_id),
                       metadata_hash=r.metadata_hash,
                       metadata=r.metadata or {}, limits=r.limits or {}, alerts=r.alerts,
                       managed_by=r.managed_by,
                       applied_at=_utc(r.applied_at) if r.applied_at else None,
                       applied_commit=r.applied_commit, content=r.content)


def _s(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def version_summaries(conn: Connection, function_id: str,
                      current_version_id: str | None) -> list[VersionSummary]:
    """Every version of a function (without content), in no particular order."""
    q = (select(V.c.id, V.c.version, V.c.behaviour_hash, V.c.provider, V.c.model,
                V.c.git_commit, V.c.created_at, U.c.name.label("author"))
         .outerjoin(U, U.c.id == V.c.created_by)
         .where(V.c.function_id == uuid.UUID(function_id)))
    return [VersionSummary(id=str(r.id), version=r.version, behaviour_hash=r.behaviour_hash,
                           provider=r.provider, model=r.model, git_commit=r.git_commit,
                           created_at=_utc(r.created_at), created_by=r.author,
                           current=str(r.id) == current_version_id)
            for r in conn.execute(q)]


def applied_hashes(conn: Connection, function_ids: Sequence[str]
                   ) -> dict[str, tuple[str | None, str | None, str]]:
    """Per function id: its current version, that version's behaviour hash, and the row's
    metadata hash (what a file must hash to for applying it to change nothing)."""
    if not function_ids:
        return {}
    q = (select(F.c.id, V.c.version, V.c.behaviour_hash, F.c.metadata_hash)
         .outerjoin(V, V.c.id == F.c.current_version_id)
         .where(F.c.id.in_([uuid.UUID(i) for i in function_ids])))
    return {str(r.id): (r.version, r.behaviour_hash, r.metadata_hash) for r in conn.execute(q)}


def version_content(conn: Connection, version_id: str) -> dict[str, Any]:
    content: dict[str, Any] = conn.execute(
        select(V.c.content).where(V.c.id == uuid.UUID(version_id))).scalar_one()
    return content


def logs_query(*, function_id: str | None = None, name: str | None = None,
               log_id: str | None = None, where: LogFilter | None = None,
               before: tuple[datetime, str] | None = None, limit: int | None = None) -> Any:
    """The one query of log rows (and their function's name), newest first: of one function
    (by id or name) or of all, one row by its id, filtered by `where`, before the position
    `before` (created_at, id). What the CLI's `aiops logs`, the Python API and the API's
    lists read."""
    where = where or LogFilter()
    q = (select(L, F.c.name).join(F, F.c.id == L.c.function_id)
         .order_by(L.c.created_at.desc(), L.c.id.desc()))
    if function_id is not None:
        q = q.where(L.c.function_id == uuid.UUID(function_id))
    if name is not None:
        q = q.where(F.c.name == name)
    if log_id is not None:
        q = q.where(L.c.id == uuid.UUID(log_id))
    if before is not None:
        at, last = as_utc(before[0]), uuid.UUID(before[1])
        q = q.where(or_(L.c.created_at < at, and_(L.c.created_at == at, L.c.id < last)))
    if where.status is not None:
        q = q.where(L.c.status == where.status)
    if where.version is not None:
        q = q.where(L.c.version == where.version)
    if where.actor is not None:
        q = q.where(L.c.actor == where.actor)
    if where.since is not None:
        q = q.where(L.c.created_at >= as_utc(where.since))
    if where.until is not None:
        q = q.where(L.c.created_at < as_utc(where.until))
    return q if limit is None else q.limit(limit)


def log_entries(conn: Connection, function_id: str, *, where: LogFilter,
                before: tuple[datetime, str] | None, limit: int) -> list[LogEntry]:
    """A function's log rows as the API shows them, newest first."""
    return [_entry(r) for r in conn.execute(logs_query(function_id=function_id, where=where,
                                                       before=before, limit=limit))]


def log_entry(conn: Connection, function_id: str, log_id: str) -> LogEntry | None:
    """One log row of a function, as the API shows it."""
    r = conn.execute(logs_query(function_id=function_id, log_id=log_id)).first()
    return None if r is None else _entry(r)


def _entry(r: Any) -> LogEntry:
    meta = r.metadata or {}
    attempts: Sequence[Any] = meta.get("attempts") or ()
    return LogEntry(
        id=str(r.id), created_at=_utc(r.created_at), status=r.status,
        version=r.version, provider=r.provider,
        model=meta.get("model"), execution_time_ms=r.execution_time,
        input_tokens=r.input_tokens, output_tokens=r.output_tokens, cost_usd=r.cost_usd,
        actor=r.actor, created_by=_s(r.created_by),
        error=r.error if isinstance(r.error, dict) or r.error is None else {"message": r.error},
        attempts=tuple(a for a in attempts if isinstance(a, dict)), input=r.input,
        output=r.output)
