"""User rows: every actor is one (`aiops.actors` says how an actor's text names a user).

`ensure_user(conn, actor)` finds the row (by email, else by a name without email) or creates
it under the id `actors.user_id` with `INSERT ... ON CONFLICT DO NOTHING`, so that processes
meeting a new actor at once agree on one row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from aiops.actors import parse_actor, user_id
from aiops.store.engine import upsert
from aiops.store.tables import U


def ensure_user(conn: Connection, actor: str | None) -> uuid.UUID:
    """The id of `actor`'s user row, inserted when there is none (in `conn`'s transaction)."""
    name, email = parse_actor(actor)
    match = U.c.email == email if email else and_(U.c.name == name, U.c.email.is_(None))
    find = select(U.c.id).where(match).order_by(U.c.created_at).limit(1)
    found = conn.execute(find).scalar()
    if found is not None:
        return found  # type: ignore[no-any-return]
    conn.execute(upsert(conn.dialect.name, U).values(
        id=user_id(name, email), name=name, email=email,
        created_at=datetime.now(UTC)).on_conflict_do_nothing())
    made = conn.execute(find).scalar()
    assert made is not None  # inserted, or inserted by another process meanwhile
    return made  # type: ignore[no-any-return]
