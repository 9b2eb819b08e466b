"""A token's daily quotas: its usage per day and the leases that hold slices of it, as a
function's budget has (aiops.budgets.TOKENS).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_usage",
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls_reserved", sa.Integer(), nullable=False),
        sa.Column("calls_used", sa.Integer(), nullable=False),
        sa.Column("usd_reserved", sa.Float(), nullable=False),
        sa.Column("usd_spent", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("token_id", "day", name="pk_token_usage"),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"],
                                name="fk_token_usage_token_id_api_tokens"),
    )
    op.create_table(
        "token_leases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_token_leases"),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"],
                                name="fk_token_leases_token_id_api_tokens"),
    )
    op.create_index("ix_token_leases_token_id_expires_at", "token_leases",
                    ["token_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_token_leases_token_id_expires_at", table_name="token_leases")
    op.drop_table("token_leases")
    op.drop_table("token_usage")
