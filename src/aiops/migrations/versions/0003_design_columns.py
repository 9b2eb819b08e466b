"""The user's schema (DESIGN §5): every column it names, and every actor a user row.

- ai_functions gains `version`, `input_schema`, `output_schema`, `provider` (copies of its
  current version, kept in step by apply) and `updated_by`; `created_by` becomes required.
- ai_function_versions: `created_by` becomes required; it gains `metadata` (the DDL's; aiops
  leaves it null: a version's metadata is its function's).
- ai_function_logs: `user_id` becomes `created_by` (the user who ran it), required; it gains
  `version` (the executed version's text, beside `version_id`); `input` becomes required.
- The defaults of the DDL: ids (gen_random_uuid() on PostgreSQL, random hex on SQLite),
  created_at / updated_at now(), status 'draft'.
- An index on ai_functions.current_version_id: SQLite checks the deferred foreign key from
  the versions it points at by scanning ai_functions without one (apply of N new functions
  was quadratic).

Existing rows are filled in: a function's copies from its current version; a log's version
from its version row, else from its metadata; a log's user from its `actor` text (a user row
per actor, matched as aiops matches actors: by email, else by a name without email); what
is still unknown goes to the user row `unknown`. Downgrading drops the new columns and
gives `user_id` back; the user rows stay.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)
# A copy of aiops.actors as it was when this migration was written (a migration does not
# import the code that comes after it).
USER_NAMESPACE = uuid.UUID("6f1c1b4e-2f55-4f0e-9a8e-5d2b0c7a1e01")
UNKNOWN = "unknown"
LOG_USER_FK_OLD = "fk_ai_function_logs_user_id_users"
LOG_USER_FK = "fk_ai_function_logs_created_by_users"
UPDATED_BY_FK = "fk_ai_functions_updated_by_users"
POINTER_INDEX = "ix_ai_functions_current_version_id"


def _parse_actor(actor: str) -> tuple[str, str | None]:
    actor = actor.strip()
    m = re.fullmatch(r"\s*(.*?)\s*<([^<>@\s]+@[^<>\s]+)>\s*", actor)
    if m:
        name, email = (m[1] or m[2]), m[2]
    elif re.fullmatch(r"[^@\s]+@[^@\s]+", actor):
        name, email = actor, actor
    else:
        name, email = actor or UNKNOWN, None
    return name[:200], (email[:320] if email else None)


def _user(conn: sa.Connection, name: str, email: str | None) -> uuid.UUID:
    users = sa.table("users", sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
                     sa.column("email", sa.String()), sa.column("created_at", TZ))
    match = (users.c.email == email if email else
             sa.and_(users.c.name == name, users.c.email.is_(None)))
    found = conn.execute(sa.select(users.c.id).where(match)
                         .order_by(users.c.created_at).limit(1)).scalar()
    if found is not None:
        return uuid.UUID(str(found))
    uid = uuid.uuid5(USER_NAMESPACE, f"email:{email}" if email else f"name:{name}")
    conn.execute(sa.insert(users).values(id=uid, name=name, email=email,
                                         created_at=datetime.now(UTC)))
    return uid


def _new_id(pg: bool) -> sa.TextClause:
    return sa.text("gen_random_uuid()" if pg else "(lower(hex(randomblob(16))))")


def _fill(conn: sa.Connection, pg: bool) -> None:
    """Every existing row gets the values the new required columns ask for."""
    uid = sa.bindparam("uid", type_=sa.Uuid())
    actors = conn.execute(sa.text(
        "SELECT DISTINCT actor FROM ai_function_logs WHERE user_id IS NULL "
        "AND actor IS NOT NULL")).scalars().all()
    for actor in actors:
        conn.execute(sa.text("UPDATE ai_function_logs SET user_id = :uid WHERE user_id IS NULL "
                             "AND actor = :actor").bindparams(uid),
                     {"uid": _user(conn, *_parse_actor(actor)), "actor": actor})
    unknown: uuid.UUID | None = None  # the user row `unknown`, made when a row needs it
    for table, column in (("ai_function_logs", "user_id"), ("ai_functions", "created_by"),
                          ("ai_function_versions", "created_by")):
        if conn.execute(sa.text(f"SELECT 1 FROM {table} WHERE {column} IS NULL")).first():
            unknown = unknown or _user(conn, UNKNOWN, None)
            conn.execute(sa.text(f"UPDATE {table} SET {column} = :uid WHERE {column} IS NULL")
                         .bindparams(uid), {"uid": unknown})

    current = ("(SELECT v.{0} FROM ai_function_versions v "
               "WHERE v.id = ai_functions.current_version_id)")
    copies = ("version", "input_schema", "output_schema", "provider")
    conn.execute(sa.text("UPDATE ai_functions SET "
                         + ", ".join(f"{c} = {current.format(c)}" for c in copies)))
    empty, null = ("'{}'::jsonb", "'null'::jsonb") if pg else ("'{}'", "'null'")
    for column, value in (("version", f"'{UNKNOWN}'"), ("input_schema", empty),
                          ("output_schema", empty), ("provider", f"'{UNKNOWN}'")):
        conn.execute(sa.text(f"UPDATE ai_functions SET {column} = {value} "
                             f"WHERE {column} IS NULL"))

    conn.execute(sa.text(
        "UPDATE ai_function_logs SET version = (SELECT v.version FROM ai_function_versions v "
        "WHERE v.id = ai_function_logs.version_id) WHERE version_id IS NOT NULL"))
    in_metadata = "metadata ->> 'version'" if pg else "json_extract(metadata, '$.version')"
    conn.execute(sa.text(f"UPDATE ai_function_logs SET version = {in_metadata} "
                         "WHERE version IS NULL"))
    conn.execute(sa.text(f"UPDATE ai_function_logs SET version = '{UNKNOWN}' "
                         "WHERE version IS NULL"))
    conn.execute(sa.text(f"UPDATE ai_function_logs SET input = {null} WHERE input IS NULL"))


def upgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    with op.batch_alter_table("ai_functions") as b:
        b.add_column(sa.Column("version", sa.String(100), nullable=True))
        b.add_column(sa.Column("input_schema", JSON, nullable=True))
        b.add_column(sa.Column("output_schema", JSON, nullable=True))
        b.add_column(sa.Column("provider", sa.String(100), nullable=True))
        b.add_column(sa.Column("updated_by", sa.Uuid(), nullable=True))
    with op.batch_alter_table("ai_function_logs") as b:
        b.add_column(sa.Column("version", sa.String(100), nullable=True))
    _fill(conn, pg)

    new_id = _new_id(pg)
    with op.batch_alter_table("ai_functions") as b:  # SQLite: one copy of each table
        for column in ("version", "provider"):
            b.alter_column(column, existing_type=sa.String(100), nullable=False)
        for column in ("input_schema", "output_schema"):
            b.alter_column(column, existing_type=JSON, nullable=False)
        b.alter_column("created_by", existing_type=sa.Uuid(), nullable=False)
        b.alter_column("status", existing_type=sa.String(20), server_default="draft")
        b.alter_column("updated_at", existing_type=TZ, server_default=sa.func.now())
        _defaults(b, new_id)
        b.create_foreign_key(UPDATED_BY_FK, "users", ["updated_by"], ["id"])
        b.create_index(POINTER_INDEX, ["current_version_id"])
    with op.batch_alter_table("ai_function_versions") as b:
        b.alter_column("created_by", existing_type=sa.Uuid(), nullable=False)
        b.add_column(sa.Column("metadata", JSON, nullable=True))
        _defaults(b, new_id)
    with op.batch_alter_table("ai_function_logs") as b:
        b.drop_constraint(LOG_USER_FK_OLD, type_="foreignkey")
        # Made before the rename, which it follows (Alembic's batch mode drops a key made on
        # the new name in the same batch).
        b.create_foreign_key(LOG_USER_FK, "users", ["user_id"], ["id"])
        b.alter_column("user_id", new_column_name="created_by", existing_type=sa.Uuid(),
                       nullable=False)
        b.alter_column("version", existing_type=sa.String(100), nullable=False)
        b.alter_column("input", existing_type=JSON, nullable=False)
        _defaults(b, new_id)


def _defaults(b: Any, new_id: sa.TextClause | None) -> None:
    """The DDL's defaults of every table it names (None: none, as before)."""
    b.alter_column("id", existing_type=sa.Uuid(), server_default=new_id)
    b.alter_column("created_at", existing_type=TZ,
                   server_default=None if new_id is None else sa.func.now())


def downgrade() -> None:
    with op.batch_alter_table("ai_function_logs") as b:
        b.drop_constraint(LOG_USER_FK, type_="foreignkey")
        b.create_foreign_key(LOG_USER_FK_OLD, "users", ["created_by"], ["id"])
        b.alter_column("created_by", new_column_name="user_id", existing_type=sa.Uuid(),
                       nullable=True)
        b.alter_column("input", existing_type=JSON, nullable=True)
        b.drop_column("version")
        _defaults(b, None)
    with op.batch_alter_table("ai_function_versions") as b:
        b.alter_column("created_by", existing_type=sa.Uuid(), nullable=True)
        b.drop_column("metadata")
        _defaults(b, None)
    with op.batch_alter_table("ai_functions") as b:
        b.drop_index(POINTER_INDEX)
        b.drop_constraint(UPDATED_BY_FK, type_="foreignkey")
        for column in ("version", "input_schema", "output_schema", "provider", "updated_by"):
            b.drop_column(column)
        b.alter_column("created_by", existing_type=sa.Uuid(), nullable=True)
        b.alter_column("status", existing_type=sa.String(20), server_default=None)
        b.alter_column("updated_at", existing_type=TZ, server_default=None)
        _defaults(b, None)
