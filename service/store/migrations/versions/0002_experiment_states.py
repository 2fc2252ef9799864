"""Experiment states (the stage and weights the admin API sets, shared by every replica) and the
fitted out-of-domain scorer of each reference set.

Revision ID: 0002_experiment_states
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_experiment_states"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_states",
        sa.Column("experiment", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("weights", sa.Text(), nullable=False),
        sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("experiment", name="pk_experiment_states"),
    )
    with op.batch_alter_table("reference_sets") as batch:
        batch.add_column(sa.Column("index_blob", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reference_sets") as batch:
        batch.drop_column("index_blob")
    op.drop_table("experiment_states")
