"""Per-minute rollups of the executions (DESIGN §8): what stats, alerts and the dashboard read
instead of scanning ai_function_logs (aiops.store.rollups).

The table starts empty: logs written before it are counted by `aiops rollups backfill`
(a one-off, idempotent: it recomputes the table from the log rows), not here, so that an
upgrade of a large database stays quick.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BUCKETS = 54  # aiops.latency.BUCKETS when this revision was written: b0..b53
KEY_LENGTHS = {"version": 100, "provider": 100, "model": 200, "outcome": 100}


def upgrade() -> None:
    op.create_table(
        "ai_function_rollups",
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        *(sa.Column(k, sa.String(n), nullable=False) for k, n in KEY_LENGTHS.items()),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nusd", sa.BigInteger(), nullable=False),
        *(sa.Column(f"b{i}", sa.Integer(), nullable=False) for i in range(BUCKETS)),
        sa.PrimaryKeyConstraint("function_id", "minute", *KEY_LENGTHS,
                                name="pk_ai_function_rollups"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_ai_function_rollups_function_id_ai_functions"),
    )
    op.create_index("ix_ai_function_rollups_minute", "ai_function_rollups", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_ai_function_rollups_minute", table_name="ai_function_rollups")
    op.drop_table("ai_function_rollups")
