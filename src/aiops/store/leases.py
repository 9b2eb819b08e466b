"""Budget leases in SQL: one transaction settles a lease's spending, resizes it, and sweeps
the function's expired leases (the policy, and what a lease is: `aiops.budgets`). A token's
daily quotas are kept the same way in their own tables (`LEDGERS`: usage_counters and
budget_leases by function, token_usage and token_leases by token); F below is either owner.

A sync of lease L of function F for day D, in one transaction:
1. the usage_counters row (F, D), created if absent and locked (PostgreSQL: FOR UPDATE;
   SQLite: BEGIN IMMEDIATE locks the database): every sync of F for D queues here;
2. the sweep: leases of F for days up to D whose expiry (on the database's clock) has passed
   are deleted, and their day's reservations summed again from the leases left;
3. what L spent moves into calls_used / usd_spent, and comes off what L holds;
4. L is set to `size(pool)` with a new expiry (deleted at zero), and the counter's
   reservations to what the other leases hold (summed) plus L.
Lock order: a sync locks its own day's counter first, then the earlier days' (newest first),
then lease rows, so two syncs never wait for each other in a cycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Table,
    and_,
    cast,
    delete,
    extract,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection

from aiops.budgets import FUNCTIONS, TOKENS, Amount, LeaseSync, Pool, settled
from aiops.store.engine import upsert
from aiops.store.tables import BL, QL, QU, C


@dataclass(frozen=True)
class _Tables:
    counter: Table  # (owner, day): used and reserved
    leases: Table  # one row per lease
    owner: str  # the owner's column in both

    def of(self, table: Table) -> Column[Any]:
        column: Column[Any] = table.c[self.owner]
        return column


LEDGERS = {FUNCTIONS.name: _Tables(C, BL, "function_id"), TOKENS.name: _Tables(QU, QL, "token_id")}


def _db_now(dialect: str) -> Any:
    """Seconds since the epoch on the database's clock (not the caller's: machines disagree)."""
    if dialect == "postgresql":
        return cast(extract("epoch", func.clock_timestamp()), Float)
    return (func.julianday(literal("now")) - 2440587.5) * 86400.0


def _held_by_others(conn: Connection, t: _Tables, fid: uuid.UUID, day: date,
                    lease: uuid.UUID | None = None) -> Amount:
    """What the leases of (F, day) hold, but `lease`: summed afresh, so that no float residue
    of adding and taking away piles up in the counter."""
    BL = t.leases
    where = [t.of(BL) == fid, BL.c.day == day]
    if lease is not None:
        where.append(BL.c.id != lease)
    calls, usd = conn.execute(select(func.coalesce(func.sum(BL.c.calls), 0),
                                     func.coalesce(func.sum(BL.c.usd), 0.0))
                              .where(*where)).one()
    return Amount(calls=int(calls), usd=float(usd))


def sync_lease(conn: Connection, sync: LeaseSync, size: Callable[[Pool], Amount]) -> Pool:
    """Steps 1-4 above on `conn`, inside the caller's transaction."""
    dialect = conn.dialect.name
    t = LEDGERS[sync.ledger]
    C, BL = t.counter, t.leases
    fid, lid, day = uuid.UUID(sync.owner_id), uuid.UUID(sync.lease_id), sync.day
    now = float(conn.execute(select(_db_now(dialect))).scalar_one())
    ins = upsert(dialect, C)
    conn.execute(ins.values({t.owner: fid, "day": day, "calls_reserved": 0, "calls_used": 0,
                             "usd_reserved": 0.0, "usd_spent": 0.0}).on_conflict_do_nothing())
    row = conn.execute(select(C.c.calls_used, C.c.usd_spent).where(
        t.of(C) == fid, C.c.day == day).with_for_update()).one()

    # The sweep: leases whose holder stopped renewing them (it died, or lost its database).
    expired = and_(t.of(BL) == fid, BL.c.day <= day, BL.c.expires_at < now, BL.c.id != lid)
    days = sorted(set(conn.execute(select(BL.c.day).where(expired)).scalars()), reverse=True)
    if days:
        for earlier in days:  # newest first: see the lock order above
            if earlier != day:
                conn.execute(select(C.c.day).where(t.of(C) == fid, C.c.day == earlier)
                             .with_for_update())
        conn.execute(delete(BL).where(expired, BL.c.day.in_(days)))
        for earlier in days:
            if earlier != day:
                left = _held_by_others(conn, t, fid, earlier)
                conn.execute(update(C).where(t.of(C) == fid, C.c.day == earlier)
                             .values(calls_reserved=left.calls, usd_reserved=left.usd))

    mine = conn.execute(select(BL.c.calls, BL.c.usd).where(BL.c.id == lid)).one_or_none()
    # A lease that was swept (its holder stalled past its expiry) holds nothing any more:
    # what it spent is still settled, and it takes what it needs anew.
    pool = settled(used=Amount(calls=row.calls_used, usd=row.usd_spent),
                   others=_held_by_others(conn, t, fid, day, lid),
                   held=Amount() if mine is None else Amount(calls=mine.calls, usd=mine.usd),
                   settle=sync.settle)
    new = size(pool)
    conn.execute(update(C).where(t.of(C) == fid, C.c.day == day).values(
        calls_used=pool.used.calls, usd_spent=pool.used.usd,
        calls_reserved=pool.others.calls + new.calls,
        usd_reserved=pool.others.usd + new.usd))
    if new.calls == 0 and new.usd == 0:
        if mine is not None:
            conn.execute(delete(BL).where(BL.c.id == lid))
    elif mine is None:
        conn.execute(insert(BL).values({"id": lid, t.owner: fid, "day": day,
                                        "holder": sync.holder, "calls": new.calls,
                                        "usd": new.usd, "expires_at": now + sync.lease_s}))
    else:
        conn.execute(update(BL).where(BL.c.id == lid).values(
            calls=new.calls, usd=new.usd, expires_at=now + sync.lease_s))
    return Pool(used=pool.used, others=pool.others, held=new)
