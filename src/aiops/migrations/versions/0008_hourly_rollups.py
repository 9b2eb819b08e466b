"""Hourly rollups beside the per-minute ones, and the compaction mark (aiops.store.rollups):
a window of 24 hours reads 24 rows per key instead of 1,440, and compaction only deletes
per-minute rows, whose hours are already summed.

The hourly table is filled from the per-minute rows already there, in SQL.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BUCKETS = 54  # aiops.latency.BUCKETS when this revision was written: b0..b53
KEY_LENGTHS = {"version": 100, "provider": 100, "model": 200, "outcome": 100}
SUMMED = ["calls", "input_tokens", "output_tokens", "cost_nusd",
          *(f"b{i}" for i in range(BUCKETS))]


def upgrade() -> None:
    op.create_table(
        "ai_function_rollups_hourly",
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        *(sa.Column(k, sa.String(n), nullable=False) for k, n in KEY_LENGTHS.items()),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nusd", sa.BigInteger(), nullable=False),
        *(sa.Column(f"b{i}", sa.Integer(), nullable=False) for i in range(BUCKETS)),
        sa.PrimaryKeyConstraint("function_id", "minute", *KEY_LENGTHS,
                                name="pk_ai_function_rollups_hourly"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_ai_function_rollups_hourly_function_id_ai_functions"),
    )
    op.create_index("ix_ai_function_rollups_hourly_minute", "ai_function_rollups_hourly",
                    ["minute"])
    op.create_table(
        "ai_function_rollup_marks",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ai_function_rollup_marks"),
    )
    keys = ", ".join(KEY_LENGTHS)
    sums = ", ".join(f"sum({c})" for c in SUMMED)
    op.execute(f"INSERT INTO ai_function_rollups_hourly (function_id, minute, {keys}, "
               f"{', '.join(SUMMED)}) SELECT function_id, minute - minute % 60, {keys}, {sums} "
               f"FROM ai_function_rollups GROUP BY function_id, minute - minute % 60, {keys}")


def downgrade() -> None:
    op.drop_table("ai_function_rollup_marks")
    op.drop_index("ix_ai_function_rollups_hourly_minute",
                  table_name="ai_function_rollups_hourly")
    op.drop_table("ai_function_rollups_hourly")
