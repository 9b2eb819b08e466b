"""What `/metrics` reads from the database at each scrape (DESIGN §8): each function's daily
budget and today's usage of it, and how many of its alert rules are firing.

The alert states are read when their table exists (`alert_states`: function_id, rule,
state), so a database migrated before alerts existed reads no firing rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import String, Uuid, and_, column, func, inspect, select, table
from sqlalchemy.engine import Connection

from aiops.store.tables import C, F

T = TypeVar("T", int, float)
ALERT_STATES = table("alert_states", column("function_id", Uuid()), column("state", String()))


@dataclass(frozen=True, kw_only=True)
class FunctionGauges:
    name: str
    access: Mapping[str, Any]
    daily_calls: int | None
    daily_budget_usd: float | None
    calls_used: int
    usd_spent: float
    alerts_firing: int
    has_alerts: bool


def function_gauges(conn: Connection, day: date) -> list[FunctionGauges]:
    """Every function but the archived ones, by name, with its usage on `day`."""
    rows = conn.execute(
        select(F.c.id, F.c.name, F.c.access, F.c.limits, F.c.alerts, C.c.calls_used,
               C.c.usd_spent)
        .outerjoin(C, and_(C.c.function_id == F.c.id, C.c.day == day))
        .where(F.c.status != "archived").order_by(F.c.name)).all()
    firing: dict[Any, int] = {}
    if inspect(conn).has_table("alert_states"):
        firing = dict(conn.execute(
            select(ALERT_STATES.c.function_id, func.count())
            .where(ALERT_STATES.c.state == "firing")
            .group_by(ALERT_STATES.c.function_id)).all())
    out = []
    for r in rows:
        limits = r.limits if isinstance(r.limits, dict) else {}
        out.append(FunctionGauges(
            name=r.name, access=dict(r.access or {}),
            daily_calls=_limit(limits.get("daily_calls"), int),
            daily_budget_usd=_limit(limits.get("daily_budget_usd"), float),
            calls_used=int(r.calls_used or 0), usd_spent=float(r.usd_spent or 0.0),
            alerts_firing=int(firing.get(r.id, 0)), has_alerts=bool(r.alerts)))
    return out


def _limit(value: Any, kind: type[T]) -> T | None:
    """A positive limit as stored, else None (no limit)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    return kind(value)
