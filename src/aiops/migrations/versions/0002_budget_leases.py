"""Budget leases: the slices of a day's budget that processes hold (aiops.budgets).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_leases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budget_leases"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_budget_leases_function_id_ai_functions"),
    )
    op.create_index("ix_budget_leases_function_id_expires_at", "budget_leases",
                    ["function_id", "expires_at"])
    # Reservations of the per-call scheme before leases have no holder to settle them: an
    # upgrade runs with no runner at work, so whatever is still reserved was left behind.
    op.execute("UPDATE usage_counters SET calls_reserved = 0, usd_reserved = 0")


def downgrade() -> None:
    op.drop_index("ix_budget_leases_function_id_expires_at", table_name="budget_leases")
    op.drop_table("budget_leases")
    op.execute("UPDATE usage_counters SET calls_reserved = 0, usd_reserved = 0")
