"""Rollups summed over the functions, and each function's totals alone (aiops.store.rollups),
for the monitoring page of every function: its charts and breakdowns read a few rows per step
from `ai_rollups_across` (per minute) and `ai_rollups_across_hourly` instead of a row per
function, key and step (at 1,000 functions and 1,000,000 executions a day, 110,000 rows of 58
columns for 24 hours), and its top lists are ranked from `ai_function_totals_hourly`, a row per
function and hour of five amounts (calls, errors, tokens, cost).

The across tables are keyed by a shard (0-15, from the function's id) beside the minute,
provider, model and outcome: every log write of an hour adds to its across rows, and the
shards spread those writes over 16 rows per key, so that writers of different functions
seldom wait on one another's row lock. Readers sum the shards.

The new tables are filled from the rollups already there, in SQL (into shard 0: a shard
only spreads the writes, the sums are the same).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BUCKETS = 54  # aiops.latency.BUCKETS when this revision was written: b0..b53
KEYS = {"provider": 100, "model": 200, "outcome": 100}
AMOUNTS = ["calls", "input_tokens", "output_tokens", "cost_nusd"]
SUMMED = [*AMOUNTS, *(f"b{i}" for i in range(BUCKETS))]
FILLFACTOR = 70  # as the hourly rollups' (0010): every write of their minute or hour, of
# any function of their shard, updates their rows (HOT, with room on the page)


def _amounts(errors: bool = False) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("calls", sa.Integer(), nullable=False),
            *([sa.Column("errors", sa.Integer(), nullable=False)] if errors else []),
            sa.Column("input_tokens", sa.BigInteger(), nullable=False),
            sa.Column("output_tokens", sa.BigInteger(), nullable=False),
            sa.Column("cost_nusd", sa.BigInteger(), nullable=False)]


def upgrade() -> None:
    for name, source in (("ai_rollups_across", "ai_function_rollups"),
                         ("ai_rollups_across_hourly", "ai_function_rollups_hourly")):
        op.create_table(
            name,
            sa.Column("minute", sa.Integer(), nullable=False),
            sa.Column("shard", sa.SmallInteger(), nullable=False),
            *(sa.Column(k, sa.String(n), nullable=False) for k, n in KEYS.items()),
            *_amounts(),
            *(sa.Column(f"b{i}", sa.Integer(), nullable=False) for i in range(BUCKETS)),
            sa.PrimaryKeyConstraint("minute", "shard", *KEYS, name=f"pk_{name}"),
        )
        keys = ", ".join(KEYS)
        op.execute(f"INSERT INTO {name} (minute, shard, {keys}, {', '.join(SUMMED)}) "
                   f"SELECT minute, 0, {keys}, {', '.join(f'sum({c})' for c in SUMMED)} "
                   f"FROM {source} GROUP BY minute, {keys}")
    op.create_table(
        "ai_function_totals_hourly",
        sa.Column("function_id", sa.Uuid(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        *_amounts(errors=True),
        sa.PrimaryKeyConstraint("function_id", "minute", name="pk_ai_function_totals_hourly"),
        sa.ForeignKeyConstraint(["function_id"], ["ai_functions.id"],
                                name="fk_ai_function_totals_hourly_function_id_ai_functions"),
    )
    op.create_index("ix_ai_function_totals_hourly_minute", "ai_function_totals_hourly",
                    ["minute"])
    op.execute(f"INSERT INTO ai_function_totals_hourly (function_id, minute, errors, "
               f"{', '.join(AMOUNTS)}) SELECT function_id, minute, "
               f"sum(CASE WHEN outcome = 'ok' THEN 0 ELSE calls END), "
               f"{', '.join(f'sum({c})' for c in AMOUNTS)} FROM ai_function_rollups_hourly "
               f"GROUP BY function_id, minute")
    if op.get_bind().dialect.name == "postgresql":
        for name in ("ai_rollups_across", "ai_rollups_across_hourly",
                     "ai_function_totals_hourly"):
            op.execute(f"ALTER TABLE {name} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    op.drop_index("ix_ai_function_totals_hourly_minute",
                  table_name="ai_function_totals_hourly")
    op.drop_table("ai_function_totals_hourly")
    op.drop_table("ai_rollups_across_hourly")
    op.drop_table("ai_rollups_across")
