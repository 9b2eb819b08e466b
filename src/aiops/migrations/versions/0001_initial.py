"""The initial schema: functions, versions, logs, users, reconcile runs, ownership, usage.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)
CURRENT_FK = "fk_ai_functions_current_version_id_ai_function_versions"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    # SQLite cannot add a constraint later; it accepts the forward reference at creation.
    current_fk = ([sa.ForeignKeyConstraint(["current_version_id"], ["ai_function_versions.id"],
                                           name=CURRENT_FK, deferrable=True,
                                           initially="DEFERRED")] if sqlite else [])
    op.create_table(
        "ai_functions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_version_id", sa.Uuid(), nullable=True),
        sa.Column("reconciled_version_id", sa.Uuid(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("metadata_hash", sa.String(64), nullable=False),
        sa.Column("limits", JSON, nullable=False),
        sa.Column("access", JSON, nullable=False),
        sa.Column("alerts", JSON, nullable=False),
        sa.Column("managed_by", sa.String(300), nullable=True),
        sa.Column("applied_at", TZ, nullable=True),
        sa.Column("applied_commit", sa.String(64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ai_functions"),
        sa.UniqueConstraint("name", name="uq_ai_functions_name"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name="fk_ai_functions_created_by_users"),
        *current_fk,
    )
    op.create_table(
        "ai_function_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("behaviour_hash", sa.String(64), nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("prompt_template", JSON, nullable=False),
        sa.Column("input_schema", JSON, nullable=False),
        sa.Column("output_schema", JSON, nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("configuration", JSON, nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ai_function_versions"),
        sa.UniqueConstraint("function_id", "version", name="uq_ai_function_versions_function_id"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_ai_function_versions_function_id_ai_functions"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name="fk_ai_function_versions_created_by_users"),
    )
    if not sqlite:
        op.create_foreign_key(CURRENT_FK, "ai_functions", "ai_function_versions",
                              ["current_version_id"], ["id"], deferrable=True,
                              initially="DEFERRED")
    op.create_table(
        "ai_function_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=True),
        sa.Column("input", JSON, nullable=True),
        sa.Column("output", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("execution_time", sa.Float(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(320), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("provider", sa.String(100), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ai_function_logs"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_ai_function_logs_function_id_ai_functions"),
        sa.ForeignKeyConstraint(["version_id"], ["ai_function_versions.id"],
                                name="fk_ai_function_logs_version_id_ai_function_versions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_ai_function_logs_user_id_users"),
    )
    op.create_index("ix_ai_function_logs_function_id_created_at", "ai_function_logs",
                    ["function_id", "created_at"])
    op.create_index("ix_ai_function_logs_created_at", "ai_function_logs", ["created_at"])
    op.create_index("ix_ai_function_logs_provider", "ai_function_logs", ["provider"])
    op.create_table(
        "reconcile_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconcile_runs"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_reconcile_runs_user_id_users"),
    )
    op.create_table(
        "managed_functions",
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("first_applied_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("project", "name", name="pk_managed_functions"),
    )
    op.create_table(
        "usage_counters",
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls_reserved", sa.Integer(), nullable=False),
        sa.Column("calls_used", sa.Integer(), nullable=False),
        sa.Column("usd_reserved", sa.Float(), nullable=False),
        sa.Column("usd_spent", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("function_id", "day", name="pk_usage_counters"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_usage_counters_function_id_ai_functions"),
    )


def downgrade() -> None:
    for table in ("usage_counters", "managed_functions", "reconcile_runs", "ai_function_logs"):
        op.drop_table(table)
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(CURRENT_FK, "ai_functions", type_="foreignkey")
    for table in ("ai_function_versions", "ai_functions", "users"):
        op.drop_table(table)
