"""API tokens' rows (aiops.tokens holds their values and rules)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from aiops.store.tables import QU, T, U
from aiops.tokens import NewToken, TokenRecord

# last_used_at is written at most this often per token: a request is not a write.
TOUCH_EVERY = timedelta(seconds=60)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def token_query() -> Any:
    owner, creator = U.alias("owner"), U.alias("creator")
    return (select(T, owner.c.name.label("user_name"), owner.c.email.label("user_email"),
                   creator.c.name.label("creator_name"))
            .join(owner, owner.c.id == T.c.user_id)
            .join(creator, creator.c.id == T.c.created_by))


def token_record(r: Any) -> TokenRecord:
    return TokenRecord(id=str(r.id), key_id=r.key_id, name=r.name, role=r.role,
                       groups=tuple(r.groups or ()), user_id=str(r.user_id), user=r.user_name,
                       created_by=r.creator_name, created_at=_utc(r.created_at) or r.created_at,
                       expires_at=_utc(r.expires_at), revoked_at=_utc(r.revoked_at),
                       last_used_at=_utc(r.last_used_at), rpm=r.rpm,
                       daily_calls=r.daily_calls, daily_usd=r.daily_usd,
                       user_email=r.user_email)


def insert_token(conn: Connection, token: NewToken, *, user_id: str,
                 created_by: str) -> TokenRecord:
    conn.execute(insert(T).values(
        id=uuid.UUID(token.id), key_id=token.key_id, secret_hash=token.secret_hash,
        name=token.name, role=token.role, groups=list(token.groups),
        user_id=uuid.UUID(user_id), created_by=uuid.UUID(created_by),
        created_at=token.created_at, expires_at=token.expires_at, rpm=token.rpm,
        daily_calls=token.daily_calls, daily_usd=token.daily_usd))
    return token_record(conn.execute(token_query().where(T.c.id == uuid.UUID(token.id))).one())


def active_name_taken(conn: Connection, name: str) -> bool:
    return conn.execute(select(T.c.id).where(T.c.name == name, T.c.revoked_at.is_(None))
                        ).first() is not None


def token_for_check(conn: Connection, key_id: str) -> tuple[TokenRecord, str] | None:
    """The token with this key id and its secret's hash."""
    r = conn.execute(token_query().where(T.c.key_id == key_id)).one_or_none()
    return None if r is None else (token_record(r), r.secret_hash)


def list_tokens(conn: Connection, *, include_revoked: bool, day: date,
                after: tuple[str, str] | None = None, limit: int | None = None
                ) -> list[TokenRecord]:
    """Tokens by (name, key id), from past `after` on, at most `limit`, each with what its
    calls used of its quotas on `day`."""
    q = token_query().order_by(T.c.name, T.c.key_id)
    if not include_revoked:
        q = q.where(T.c.revoked_at.is_(None))
    if after is not None:
        name, key_id = after
        q = q.where(or_(T.c.name > name, and_(T.c.name == name, T.c.key_id > key_id)))
    if limit is not None:
        q = q.limit(limit)
    rows = conn.execute(q).all()
    ids = [r.id for r in rows]
    used = {str(r.token_id): r for r in conn.execute(
        select(QU.c.token_id, QU.c.calls_used, QU.c.usd_spent).where(
            QU.c.day == day, QU.c.token_id.in_(ids)))} if ids else {}
    records = []
    for r in rows:
        record = token_record(r)
        u = used.get(record.id)
        records.append(record if u is None else replace(
            record, calls_today=u.calls_used, usd_today=u.usd_spent))
    return records


def usage(conn: Connection, token_id: str, day: date) -> tuple[int, float]:
    """What a token's calls used of its daily quotas on `day`, settled: (calls, USD)."""
    r = conn.execute(select(QU.c.calls_used, QU.c.usd_spent).where(
        QU.c.token_id == uuid.UUID(token_id), QU.c.day == day)).one_or_none()
    return (0, 0.0) if r is None else (int(r.calls_used), float(r.usd_spent))


def find_tokens(conn: Connection, ref: str) -> list[TokenRecord]:
    """Tokens not revoked whose key id or name is `ref`."""
    q = token_query().where(or_(T.c.key_id == ref, T.c.name == ref), T.c.revoked_at.is_(None))
    return [token_record(r) for r in conn.execute(q)]


def revoke(conn: Connection, token_id: str, now: datetime) -> None:
    conn.execute(update(T).where(T.c.id == uuid.UUID(token_id), T.c.revoked_at.is_(None))
                 .values(revoked_at=now))


def touch(conn: Connection, token_id: str, now: datetime) -> None:
    """Record a use (at most once per TOUCH_EVERY)."""
    conn.execute(update(T).where(
        T.c.id == uuid.UUID(token_id),
        or_(T.c.last_used_at.is_(None), and_(T.c.last_used_at < now - TOUCH_EVERY)))
        .values(last_used_at=now))
