"""Alerts: each rule's state, the history of notifications, their outbox, and the evaluator's
lock row (aiops.monitoring.alerts, aiops.store.alerts).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(63), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("since", TZ, nullable=True),
        sa.Column("pending_since", TZ, nullable=True),
        sa.Column("fired_at", TZ, nullable=True),
        sa.Column("last_notified_at", TZ, nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("evaluated_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("function_id", "rule", name="pk_alert_states"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_alert_states_function_id_ai_functions"),
    )
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(63), nullable=False),
        sa.Column("event", sa.String(10), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("receivers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_history"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_alert_history_function_id_ai_functions"),
    )
    op.create_index("ix_alert_history_at", "alert_history", ["at"])
    op.create_index("ix_alert_history_function_id_at", "alert_history", ["function_id", "at"])
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("history_id", sa.Uuid(), nullable=False),
        sa.Column("receiver", sa.String(63), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("claim", sa.Uuid(), nullable=True),
        sa.Column("sent_at", TZ, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_outbox"),
        sa.ForeignKeyConstraint(["history_id"], ["alert_history.id"],
                                name="fk_alert_outbox_history_id_alert_history"),
    )
    op.create_index("ix_alert_outbox_status_next_attempt_at", "alert_outbox",
                    ["status", "next_attempt_at"])
    evaluator = op.create_table(
        "alert_evaluator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("last_run_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_evaluator"),
    )
    op.bulk_insert(evaluator, [{"id": 1, "holder": None, "last_run_at": None}])


def downgrade() -> None:
    op.drop_table("alert_evaluator")
    op.drop_index("ix_alert_outbox_status_next_attempt_at", table_name="alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_index("ix_alert_history_function_id_at", table_name="alert_history")
    op.drop_index("ix_alert_history_at", table_name="alert_history")
    op.drop_table("alert_history")
    op.drop_table("alert_states")
