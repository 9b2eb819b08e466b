"""Idempotency keys' rows: a request's claim on its (token, key), then its answer, kept so that
a retry gets the first answer instead of a second execution (aiops.commands.invoke).

Each step is its own short transaction; none stays open while the function runs. Times are
seconds since the epoch on the database's clock, which every replica shares.

    claim    drop the key's record if it expired (and sweep other expired ones), then insert a
             `running` claim; when one is there already, say what it holds: an answer
             (`done`), another request still running, or a different request under that key.
             A `running` claim past `locked_until` (its holder died) is taken over, keeping
             its execution id, so that a second delivery never makes a second log row.
    finish   store the answer's bytes, once the execution has its log row.
    release  drop a `running` claim whose request ended before any execution (nothing to keep).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from aiops.store.engine import upsert
from aiops.store.leases import _db_now as db_now
from aiops.store.tables import IK

ClaimState = Literal["new", "done", "running", "mismatch"]


@dataclass(frozen=True, kw_only=True)
class ClaimRow:
    """What a claim found: `new` (this request holds the key now, under `log_id`; also after a
    takeover), `done` (the stored answer), `running` (another request holds it), `mismatch`
    (the key was used for a different request)."""

    state: ClaimState
    log_id: str
    status_code: int | None = None
    content_type: str | None = None
    response: bytes | None = None


def claim(conn: Connection, *, token_id: str, key: str, fingerprint: str, log_id: str,
          lease_s: float, ttl_s: float) -> ClaimRow:
    now = db_now(conn.dialect.name)
    tid = uuid.UUID(token_id)
    mine = and_(IK.c.token_id == tid, IK.c.key == key)
    conn.execute(delete(IK).where(IK.c.expires_at < now))  # the sweep (indexed)
    inserted = conn.execute(upsert(conn.dialect.name, IK).values(
        token_id=tid, key=key, fingerprint=fingerprint, status="running",
        log_id=uuid.UUID(log_id), created_at=datetime.now(UTC), locked_until=now + lease_s,
        expires_at=now + ttl_s).on_conflict_do_nothing().returning(IK.c.key)).first()
    if inserted is not None:  # (rowcount says -1 on psycopg's pipeline)
        return ClaimRow(state="new", log_id=log_id)
    row = conn.execute(select(IK.c.fingerprint, IK.c.status, IK.c.log_id, IK.c.status_code,
                              IK.c.content_type, IK.c.response,
                              (IK.c.locked_until < now).label("stale"))
                       .where(mine).with_for_update()).one()
    held = str(row.log_id)
    if row.fingerprint != fingerprint:
        return ClaimRow(state="mismatch", log_id=held)
    if row.status == "done":
        return ClaimRow(state="done", log_id=held, status_code=row.status_code,
                        content_type=row.content_type, response=bytes(row.response or b""))
    if not row.stale:
        return ClaimRow(state="running", log_id=held)
    taken = conn.execute(update(IK).where(mine, IK.c.status == "running",
                                          IK.c.locked_until < now)
                         .values(locked_until=now + lease_s).returning(IK.c.key)).first()
    return ClaimRow(state="new" if taken is not None else "running", log_id=held)


def finish(conn: Connection, *, token_id: str, key: str, log_id: str, status_code: int,
           content_type: str, response: bytes) -> None:
    conn.execute(update(IK).where(IK.c.token_id == uuid.UUID(token_id), IK.c.key == key,
                                  IK.c.log_id == uuid.UUID(log_id))
                 .values(status="done", status_code=status_code, content_type=content_type,
                         response=response))


def release(conn: Connection, *, token_id: str, key: str, log_id: str) -> None:
    conn.execute(delete(IK).where(IK.c.token_id == uuid.UUID(token_id), IK.c.key == key,
                                  IK.c.log_id == uuid.UUID(log_id), IK.c.status == "running"))
