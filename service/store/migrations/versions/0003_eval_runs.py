"""Offline evaluations: each run's report and the judge scores behind it.

Revision ID: 0003_eval_runs
Revises: 0002_experiment_states
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_eval_runs"
down_revision: str | Sequence[str] | None = "0002_experiment_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("experiment", sa.String(64), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_eval_runs"),
    )
    op.create_table(
        "eval_scores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("arm", sa.String(32), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("evaluator", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"], name="fk_eval_scores_run_id_eval_runs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_eval_scores"),
    )
    op.create_index("ix_eval_scores_run_id", "eval_scores", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_eval_scores_run_id", table_name="eval_scores")
    op.drop_table("eval_scores")
    op.drop_table("eval_runs")
