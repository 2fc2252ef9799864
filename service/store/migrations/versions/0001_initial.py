"""The initial schema: requests, samples, feedback, scores, signals, reference sets, alerts, outbox.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-24

Written by hand (autogenerate is a draft); never imports ``service`` models. Constraint names
follow the models' naming convention so later revisions can drop them by name on both dialects.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 64
NAME = 64
ARM = 32
STATE = 16


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _request_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["request_id"], ["requests.id"], name=f"fk_{table}_request_id_requests", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.String(ID), nullable=False),
        _at("created_at"),
        sa.Column("experiment", sa.String(NAME), nullable=False),
        sa.Column("arm", sa.String(ARM), nullable=False),
        sa.Column("upstream", sa.String(NAME), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error_kind", sa.String(NAME), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("ttft_s", sa.Float(), nullable=True),
        sa.Column("upstream_latency_s", sa.Float(), nullable=True),
        sa.Column("overhead_s", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("unit_hash", sa.String(32), nullable=True),
        sa.Column("sampled", sa.Boolean(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("query_chars", sa.Integer(), nullable=True),
        sa.Column("ood_score", sa.Float(), nullable=True),
        sa.Column("out_of_domain", sa.Boolean(), nullable=True),
        sa.Column("logprob_mean", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_requests"),
    )
    op.create_index("ix_requests_experiment_created_at", "requests", ["experiment", "created_at"])
    op.create_index("ix_requests_experiment_arm_created_at", "requests", ["experiment", "arm", "created_at"])
    op.create_index("ix_requests_created_at", "requests", ["created_at"])

    op.create_table(
        "samples",
        sa.Column("request_id", sa.String(ID), nullable=False),
        _at("created_at"),
        sa.Column("experiment", sa.String(NAME), nullable=False),
        sa.Column("arm", sa.String(ARM), nullable=False),
        sa.Column("messages", sa.Text(), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("state", sa.String(STATE), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claimed_by", sa.String(NAME), nullable=True),
        _at("claimed_until", nullable=True),
        _at("next_attempt_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("scored_at", nullable=True),
        _at("text_purged_at", nullable=True),
        _request_fk("samples"),
        sa.PrimaryKeyConstraint("request_id", name="pk_samples"),
    )
    op.create_index("ix_samples_state_next_attempt_at", "samples", ["state", "next_attempt_at"])
    op.create_index("ix_samples_experiment_arm_created_at", "samples", ["experiment", "arm", "created_at"])
    op.create_index("ix_samples_created_at", "samples", ["created_at"])

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(ID), nullable=False),
        _at("created_at"),
        sa.Column("experiment", sa.String(NAME), nullable=False),
        sa.Column("arm", sa.String(ARM), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("thumbs", sa.String(8), nullable=True),
        sa.Column("sentiment", sa.String(STATE), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        _request_fk("feedback"),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_index("ix_feedback_experiment_arm_created_at", "feedback", ["experiment", "arm", "created_at"])

    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(ID), nullable=False),
        sa.Column("experiment", sa.String(NAME), nullable=False),
        sa.Column("arm", sa.String(ARM), nullable=False),
        sa.Column("evaluator", sa.String(NAME), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("judge_model", sa.String(128), nullable=True),
        _at("created_at"),
        _request_fk("scores"),
        sa.PrimaryKeyConstraint("id", name="pk_scores"),
        sa.UniqueConstraint("request_id", "evaluator", name="uq_scores_request_id_evaluator"),
    )
    op.create_index("ix_scores_experiment_arm_created_at", "scores", ["experiment", "arm", "created_at"])

    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _at("created_at"),
        sa.Column("experiment", sa.String(NAME), nullable=False),
        sa.Column("arm", sa.String(ARM), nullable=True),
        sa.Column("detector", sa.String(NAME), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
    )
    op.create_index(
        "ix_signals_experiment_detector_created_at", "signals", ["experiment", "detector", "created_at"]
    )

    op.create_table(
        "reference_sets",
        sa.Column("experiment", sa.String(NAME), nullable=False),
        _at("created_at"),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("percentile", sa.Float(), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("params", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("experiment", name="pk_reference_sets"),
    )
    op.create_table(
        "reference_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experiment", sa.String(NAME), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment"], ["reference_sets.experiment"],
            name="fk_reference_items_experiment_reference_sets", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reference_items"),
    )
    op.create_index("ix_reference_items_experiment", "reference_items", ["experiment"])

    op.create_table(
        "alert_states",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("alert", sa.String(NAME), nullable=False),
        sa.Column("experiment", sa.String(NAME), nullable=False),
        sa.Column("arm", sa.String(ARM), nullable=True),
        sa.Column("state", sa.String(STATE), nullable=False),
        _at("since_at"),
        _at("last_notified_at", nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_alert_states"),
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _at("created_at"),
        sa.Column("alert_key", sa.String(200), nullable=False),
        sa.Column("target", sa.String(NAME), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(STATE), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _at("next_attempt_at", nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index(
        "ix_webhook_deliveries_state_next_attempt_at", "webhook_deliveries", ["state", "next_attempt_at"]
    )


def downgrade() -> None:
    # Children before parents, so foreign keys never block a drop.
    op.drop_index("ix_webhook_deliveries_state_next_attempt_at", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("alert_states")
    op.drop_index("ix_reference_items_experiment", table_name="reference_items")
    op.drop_table("reference_items")
    op.drop_table("reference_sets")
    op.drop_index("ix_signals_experiment_detector_created_at", table_name="signals")
    op.drop_table("signals")
    op.drop_index("ix_scores_experiment_arm_created_at", table_name="scores")
    op.drop_table("scores")
    op.drop_index("ix_feedback_experiment_arm_created_at", table_name="feedback")
    op.drop_index("ix_feedback_request_id", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_samples_created_at", table_name="samples")
    op.drop_index("ix_samples_experiment_arm_created_at", table_name="samples")
    op.drop_index("ix_samples_state_next_attempt_at", table_name="samples")
    op.drop_table("samples")
    op.drop_index("ix_requests_created_at", table_name="requests")
    op.drop_index("ix_requests_experiment_arm_created_at", table_name="requests")
    op.drop_index("ix_requests_experiment_created_at", table_name="requests")
    op.drop_table("requests")
