"""Alerts in SQL: the deployed rules, window stats, usage, each rule's state, the history of
notifications and the outbox that delivers them (the decisions: aiops.monitoring.alerts).

One evaluator at a time: an evaluation's writes happen in one transaction that first locks
the `alert_evaluator` row (PostgreSQL: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE), reads
the states again under that lock, and writes states, history and outbox together. Two
evaluators that measured at once queue on the lock; the second reads the states the first
wrote, so a transition is notified once. The row's `last_run_at` lets the server's replicas
skip an evaluation another one made within the interval.

The outbox is claimed, not locked: a deliverer sets `claim` and `claimed_until` on the rows it
takes, under the same conditions it selected them by, and sends outside any transaction. Two
deliverers never take the same row; a deliverer that dies leaves its rows to be claimed again
once `claimed_until` has passed.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from aiops.monitoring.alerts import RuleState, Usage
from aiops.store.engine import as_utc, upsert
from aiops.store.tables import AE, AH, AO, AS, C, F

EVALUATOR_ROW = 1


def _utc(value: datetime | None) -> datetime | None:
    """A time read back (SQLite keeps no zone: aiops writes UTC)."""
    return None if value is None else as_utc(value)


@dataclass(frozen=True, kw_only=True)
class RuleRow:
    function_id: str
    name: str
    alerts: Any
    limits: Any
    access: Any


def rule_rows(conn: Connection) -> list[RuleRow]:
    """Functions with alert rules, archived ones left out."""
    rows = conn.execute(select(F.c.id, F.c.name, F.c.alerts, F.c.limits, F.c.access)
                        .where(F.c.status != "archived").order_by(F.c.name))
    return [RuleRow(function_id=str(r.id), name=r.name, alerts=r.alerts, limits=r.limits,
                    access=r.access) for r in rows if r.alerts]


def usage_today(conn: Connection, function_ids: Sequence[str], day: date) -> dict[str, Usage]:
    if not function_ids:
        return {}
    rows = conn.execute(select(C.c.function_id, C.c.calls_used, C.c.usd_spent).where(
        C.c.function_id.in_([uuid.UUID(f) for f in function_ids]), C.c.day == day))
    return {str(r.function_id): Usage(calls=int(r.calls_used), usd=float(r.usd_spent))
            for r in rows}


def read_states(conn: Connection) -> dict[tuple[str, str], RuleState]:
    return {(str(r.function_id), r.rule): RuleState(
        state=r.state, since=_utc(r.since), pending_since=_utc(r.pending_since),
        fired_at=_utc(r.fired_at), last_notified_at=_utc(r.last_notified_at), value=r.value,
        evaluated_at=_utc(r.evaluated_at)) for r in conn.execute(select(AS))}


def lock_evaluator(conn: Connection) -> datetime | None:
    """Lock the evaluator's row for this transaction; when the last evaluation ran."""
    dialect = conn.dialect.name
    conn.execute(upsert(dialect, AE).values(id=EVALUATOR_ROW).on_conflict_do_nothing())
    row = conn.execute(select(AE.c.last_run_at).where(AE.c.id == EVALUATOR_ROW)
                       .with_for_update()).one()
    return _utc(row.last_run_at)


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """A notification as alert_history keeps it."""

    id: str
    function_id: str
    rule: str
    event: str
    severity: str
    value: float | None
    at: datetime
    payload: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Notification(Recorded):
    """A history row to write, and the receivers it is queued for."""

    receivers: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """What one evaluation writes."""

    states: Mapping[tuple[str, str], RuleState]
    notifications: Sequence[Notification]
    removed: Sequence[tuple[str, str]] = ()  # states of rules that are gone: deleted


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def write_evaluation(conn: Connection, ev: Evaluation, *, holder: str, now: datetime) -> None:
    dialect = conn.dialect.name
    if ev.states:
        rows = [{"function_id": uuid.UUID(fid), "rule": rule, "state": s.state,
                 "since": s.since, "pending_since": s.pending_since, "fired_at": s.fired_at,
                 "last_notified_at": s.last_notified_at, "value": _finite(s.value),
                 "evaluated_at": s.evaluated_at} for (fid, rule), s in ev.states.items()]
        stmt = upsert(dialect, AS)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["function_id", "rule"],
            set_={c: stmt.excluded[c] for c in ("state", "since", "pending_since", "fired_at",
                                                 "last_notified_at", "value", "evaluated_at")}),
            rows)
    if ev.removed:
        conn.execute(delete(AS).where(AS.c.function_id == bindparam("fid"),
                                      AS.c.rule == bindparam("r")),
                     [{"fid": uuid.UUID(fid), "r": rule} for fid, rule in ev.removed])
    if ev.notifications:
        conn.execute(insert(AH), [{
            "id": uuid.UUID(n.id), "function_id": uuid.UUID(n.function_id), "rule": n.rule,
            "event": n.event, "severity": n.severity, "value": _finite(n.value), "at": n.at,
            "payload": dict(n.payload), "receivers": len(n.receivers)}
            for n in ev.notifications])
        outbox = [{"id": uuid.uuid4(), "history_id": uuid.UUID(n.id), "receiver": r,
                   "status": "pending", "attempts": 0, "created_at": now,
                   "next_attempt_at": now} for n in ev.notifications for r in n.receivers]
        if outbox:
            conn.execute(insert(AO), outbox)
    conn.execute(update(AE).where(AE.c.id == EVALUATOR_ROW)
                 .values(holder=holder[:200], last_run_at=now))


# --- the outbox ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Claimed:
    id: str
    receiver: str
    attempts: int
    created_at: datetime
    payload: Mapping[str, Any]


def claim_due(conn: Connection, *, now: datetime, until: datetime, limit: int) -> list[Claimed]:
    """Take up to `limit` pending notifications that are due and not claimed by a live
    deliverer, until `until`."""
    claim = uuid.uuid4()
    free = and_(AO.c.status == "pending", AO.c.next_attempt_at <= now,
                or_(AO.c.claimed_until.is_(None), AO.c.claimed_until < now))
    due = select(AO.c.id).where(free).order_by(AO.c.next_attempt_at, AO.c.id).limit(limit)
    conn.execute(update(AO).where(AO.c.id.in_(due.scalar_subquery()), free)
                 .values(claim=claim, claimed_until=until))
    rows = conn.execute(select(AO.c.id, AO.c.receiver, AO.c.attempts, AO.c.created_at,
                               AH.c.payload).join(AH, AH.c.id == AO.c.history_id)
                        .where(AO.c.claim == claim).order_by(AO.c.next_attempt_at, AO.c.id))
    return [Claimed(id=str(r.id), receiver=r.receiver, attempts=r.attempts,
                    created_at=_utc(r.created_at) or now, payload=r.payload) for r in rows]


def settle(conn: Connection, outbox_id: str, *, status: str, attempts: int,
           next_attempt_at: datetime | None, error: str | None, now: datetime) -> None:
    values: dict[str, Any] = {"status": status, "attempts": attempts, "claim": None,
                              "claimed_until": None, "last_error": error}
    if status == "sent":
        values["sent_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    conn.execute(update(AO).where(AO.c.id == uuid.UUID(outbox_id)).values(values))


def pending_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(AO)
                            .where(AO.c.status == "pending")).scalar_one())


# --- reading for people ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HistoryRow(Recorded):
    """A notification read back, with its deliveries (receiver, status, attempts, ...)."""

    deliveries: tuple[Mapping[str, Any], ...]


def history(conn: Connection, *, function_ids: Sequence[str] | None, limit: int,
            before: tuple[datetime, str] | None = None) -> list[HistoryRow]:
    """Newest first; `before`: the (at, id) of the last row of the previous page."""
    q = select(AH).order_by(AH.c.at.desc(), AH.c.id.desc()).limit(limit)
    if function_ids is not None:
        q = q.where(AH.c.function_id.in_([uuid.UUID(f) for f in function_ids]))
    if before is not None:
        at, hid = as_utc(before[0]), uuid.UUID(before[1])
        q = q.where(or_(AH.c.at < at, and_(AH.c.at == at, AH.c.id < hid)))
    rows = list(conn.execute(q))
    sent: dict[str, list[Mapping[str, Any]]] = {}
    if rows:
        for o in conn.execute(select(AO).where(AO.c.history_id.in_([r.id for r in rows]))
                              .order_by(AO.c.receiver)):
            sent.setdefault(str(o.history_id), []).append({
                "receiver": o.receiver, "status": o.status, "attempts": o.attempts,
                "sent_at": _utc(o.sent_at), "last_error": o.last_error})
    return [HistoryRow(id=str(r.id), function_id=str(r.function_id), rule=r.rule,
                       event=r.event, severity=r.severity, value=r.value,
                       at=_utc(r.at) or r.at, payload=r.payload,
                       deliveries=tuple(sent.get(str(r.id), ())))
            for r in rows]


Reader = Callable[[Connection], Any]
