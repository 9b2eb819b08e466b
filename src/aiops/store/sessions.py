"""Web UI sessions' rows (aiops.sessions holds their values and rules)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.engine import Connection

from aiops.sessions import NewSession, SessionRecord
from aiops.store.engine import as_utc
from aiops.store.tables import UI, T
from aiops.store.tokens import token_query, token_record
from aiops.tokens import TokenRecord


def insert_session(conn: Connection, session: NewSession) -> None:
    """Store a session; sessions expired by then go (sign-ins sweep the table)."""
    conn.execute(delete(UI).where(UI.c.expires_at <= session.created_at))
    conn.execute(insert(UI).values(
        id=session.id_hash, token_id=uuid.UUID(session.token_id), csrf=session.csrf,
        created_at=session.created_at, expires_at=session.expires_at))


def find_session(conn: Connection, id_hash: str) -> tuple[SessionRecord, TokenRecord] | None:
    """The session with this hash and its token (one query)."""
    q = (token_query().add_columns(UI.c.id.label("session_id"), UI.c.csrf.label("session_csrf"),
                              UI.c.created_at.label("session_created_at"),
                              UI.c.expires_at.label("session_expires_at"))
         .join(UI, UI.c.token_id == T.c.id).where(UI.c.id == id_hash))
    r = conn.execute(q).one_or_none()
    if r is None:
        return None
    session = SessionRecord(id_hash=r.session_id, token_id=str(r.id), csrf=r.session_csrf,
                            created_at=as_utc(r.session_created_at),
                            expires_at=as_utc(r.session_expires_at))
    return session, token_record(r)


def delete_session(conn: Connection, id_hash: str) -> None:
    conn.execute(delete(UI).where(UI.c.id == id_hash))


def delete_expired(conn: Connection, now: datetime) -> None:
    conn.execute(delete(UI).where(UI.c.expires_at <= now))
