"""The schema: SQLAlchemy 2.0 declarative models, the single source the migrations are checked against.

Tables are plural snake_case; every time is an aware UTC ``DateTime(timezone=True)`` named ``*_at``
(:class:`UTCDateTime` refuses naive values and gives aware ones back, on SQLite too). Stored state
values are the ``StrEnum`` members below, kept as short strings (no database ENUM types, so adding a
value needs no migration). JSON payloads are ``Text`` holding JSON written with orjson.

These classes never leave ``service.store``: queries return frozen dataclasses. Alembic revisions
never import this module; ``tests`` check that ``upgrade head`` and these models do not differ.

Must not import: telemetry, gateway, quality, drift, alerts (store -> config, errors only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AlertState",
    "AlertStateRow",
    "Base",
    "DeliveryState",
    "EvalRun",
    "EvalScore",
    "ExperimentStateRow",
    "Feedback",
    "ReferenceItem",
    "ReferenceSet",
    "Request",
    "Sample",
    "SampleState",
    "Score",
    "Sentiment",
    "Signal",
    "Thumbs",
    "UTCDateTime",
    "WebhookDelivery",
]

#: constraint names are deterministic, so migrations can name what they drop on both dialects
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column widths, shared so a request id fits everywhere it is referenced.
_ID = 64
_NAME = 64
_ARM = 32
_STATE = 16


class SampleState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SCORED = "scored"
    FAILED = "failed"


class Thumbs(StrEnum):
    UP = "up"
    DOWN = "down"


class Sentiment(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class AlertState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always returns aware UTC datetimes.

    SQLite keeps no zone: values are converted to UTC before they are written (so text order is
    time order) and tagged UTC when read. A naive datetime raises ``ValueError``: its zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; use an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _request_fk() -> ForeignKey:
    # Retention deletes requests; everything about a request goes with it.
    return ForeignKey("requests.id", ondelete="CASCADE")


class Request(Base):
    """One served request (every request, sampled or not). ``unit_hash`` is never the raw unit id."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_experiment_created_at", "experiment", "created_at"),
        Index("ix_requests_experiment_arm_created_at", "experiment", "arm", "created_at"),
        Index("ix_requests_created_at", "created_at"),  # retention scans by age alone
    )

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    experiment: Mapped[str] = mapped_column(String(_NAME))
    arm: Mapped[str] = mapped_column(String(_ARM))
    upstream: Mapped[str] = mapped_column(String(_NAME))
    stream: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    error_kind: Mapped[str | None] = mapped_column(String(_NAME))
    latency_s: Mapped[float] = mapped_column(Float)
    ttft_s: Mapped[float | None] = mapped_column(Float)
    upstream_latency_s: Mapped[float | None] = mapped_column(Float)
    overhead_s: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    #: HMAC-SHA256 of the unit id under the deployment's key, 32 hex characters
    unit_hash: Mapped[str | None] = mapped_column(String(32))
    sampled: Mapped[bool] = mapped_column(Boolean)
    shadow: Mapped[bool] = mapped_column(Boolean)
    #: the last user message, kept for out-of-domain scoring; nulled by retention
    query: Mapped[str | None] = mapped_column(Text)
    query_chars: Mapped[int | None] = mapped_column(Integer)
    ood_score: Mapped[float | None] = mapped_column(Float)
    out_of_domain: Mapped[bool | None] = mapped_column(Boolean)
    logprob_mean: Mapped[float | None] = mapped_column(Float)


class Sample(Base):
    """A sampled request's text, queued for the judge. Text columns are nulled by retention."""

    __tablename__ = "samples"
    __table_args__ = (
        Index("ix_samples_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_samples_experiment_arm_created_at", "experiment", "arm", "created_at"),
        Index("ix_samples_created_at", "created_at"),  # retention walks samples by age alone
    )

    request_id: Mapped[str] = mapped_column(String(_ID), _request_fk(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    experiment: Mapped[str] = mapped_column(String(_NAME))
    arm: Mapped[str] = mapped_column(String(_ARM))
    messages: Mapped[str | None] = mapped_column(Text)  # JSON
    query: Mapped[str | None] = mapped_column(Text)
    response_text: Mapped[str | None] = mapped_column(Text)
    context: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(_STATE), server_default=SampleState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(_NAME))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    text_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Feedback(Base):
    """A user's verdict on one response (``POST /v1/feedback``)."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_request_id", "request_id"),  # the cascade from requests looks rows up by it
        Index("ix_feedback_experiment_arm_created_at", "experiment", "arm", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(_ID), _request_fk())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    experiment: Mapped[str] = mapped_column(String(_NAME))
    arm: Mapped[str] = mapped_column(String(_ARM))
    score: Mapped[int | None] = mapped_column(Integer)  # 1..5
    thumbs: Mapped[str | None] = mapped_column(String(8))
    sentiment: Mapped[str] = mapped_column(String(_STATE))
    comment: Mapped[str | None] = mapped_column(Text)


class Score(Base):
    """One evaluator's score of one sample; at most one per (request, evaluator)."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("request_id", "evaluator", name="uq_scores_request_id_evaluator"),
        Index("ix_scores_experiment_arm_created_at", "experiment", "arm", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(_ID), _request_fk())
    experiment: Mapped[str] = mapped_column(String(_NAME))
    arm: Mapped[str] = mapped_column(String(_ARM))
    evaluator: Mapped[str] = mapped_column(String(_NAME))
    score: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    judge_model: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Signal(Base):
    """A detector's reading at one time (drift, OOD rate, feedback rate, sample-ratio mismatch)."""

    __tablename__ = "signals"
    __table_args__ = (
        Index("ix_signals_experiment_detector_created_at", "experiment", "detector", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    experiment: Mapped[str] = mapped_column(String(_NAME))
    arm: Mapped[str | None] = mapped_column(String(_ARM))
    detector: Mapped[str] = mapped_column(String(_NAME))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean)
    evidence: Mapped[str | None] = mapped_column(Text)  # JSON


class ReferenceSet(Base):
    """The in-domain reference an experiment's OOD scores are measured against (one per experiment)."""

    __tablename__ = "reference_sets"

    experiment: Mapped[str] = mapped_column(String(_NAME), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    percentile: Mapped[float] = mapped_column(Float)
    backend: Mapped[str] = mapped_column(String(32))
    params: Mapped[str | None] = mapped_column(Text)  # JSON
    #: the fitted, calibrated scorer (``drift.ood.Calibration.to_bytes()``: an npz, no pickle)
    index_blob: Mapped[bytes | None] = mapped_column(LargeBinary)


class ReferenceItem(Base):
    __tablename__ = "reference_items"
    __table_args__ = (Index("ix_reference_items_experiment", "experiment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment: Mapped[str] = mapped_column(
        String(_NAME), ForeignKey("reference_sets.experiment", ondelete="CASCADE")
    )
    text: Mapped[str] = mapped_column(Text)


class AlertStateRow(Base):
    """The state machine of one alert instance; ``key`` is ``alert|experiment|arm``."""

    __tablename__ = "alert_states"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    alert: Mapped[str] = mapped_column(String(_NAME))
    experiment: Mapped[str] = mapped_column(String(_NAME))
    arm: Mapped[str | None] = mapped_column(String(_ARM))
    state: Mapped[str] = mapped_column(String(_STATE))
    since_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    value: Mapped[float | None] = mapped_column(Float)
    payload: Mapped[str | None] = mapped_column(Text)  # JSON


class WebhookDelivery(Base):
    """The outbox: one signed POST to one receiver (``target`` is its name, never its URL)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    alert_key: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(_NAME))
    payload: Mapped[str] = mapped_column(Text)  # JSON
    state: Mapped[str] = mapped_column(String(_STATE), server_default=DeliveryState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExperimentStateRow(Base):
    """An experiment's live stage and weights, shared by every replica (the admin API writes it).

    ``stage_started_at`` is when the current stage and weights took effect: the comparison
    accumulates from there, since a stage or weight change restarts the experiment's statistics.
    """

    __tablename__ = "experiment_states"

    experiment: Mapped[str] = mapped_column(String(_NAME), primary_key=True)
    stage: Mapped[str] = mapped_column(String(_STATE))
    weights: Mapped[str] = mapped_column(Text)  # JSON: {arm: weight}
    stage_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EvalRun(Base):
    """One offline evaluation (``tunewatch eval``): its report as printed, kept for the record."""

    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    experiment: Mapped[str] = mapped_column(String(_NAME))
    dataset: Mapped[str] = mapped_column(Text)
    n: Mapped[int] = mapped_column(Integer)
    report: Mapped[str] = mapped_column(Text)  # JSON: the --format json output


class EvalScore(Base):
    """A judge score of one arm's answer to one dataset row in an offline evaluation."""

    __tablename__ = "eval_scores"
    __table_args__ = (Index("ix_eval_scores_run_id", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(_ID), ForeignKey("eval_runs.id", ondelete="CASCADE"))
    arm: Mapped[str] = mapped_column(String(_ARM))
    row: Mapped[int] = mapped_column(Integer)
    evaluator: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
