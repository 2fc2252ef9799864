"""Reads and small writes the API and the report need: request lookup, feedback, per-arm summaries.

Every function blocks (one short transaction); call it from a ``def`` route, a job thread or the CLI.
Results are frozen dataclasses, never ORM objects. Times are aware UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, case, func, insert, select

from service.errors import InvalidRequestError, NotFoundError
from service.store.db import Database
from service.store.models import Feedback, Request, Sample, SampleState, Sentiment, Thumbs

__all__ = [
    "ArmSummary", "FeedbackRow", "RequestRef",
    "add_feedback", "arm_summaries", "find_request", "sentiment_of",
]

#: a response counts as served (for latency percentiles) only with this status
_OK = 200
_COMMENT_MAX_CHARS = 4000


@dataclass(frozen=True, slots=True)
class RequestRef:
    request_id: str
    experiment: str
    arm: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    id: int
    request_id: str
    experiment: str
    arm: str
    created_at: datetime
    score: int | None
    thumbs: str | None
    sentiment: str
    comment: str | None


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One arm over a window. Latencies are seconds, costs USD; None where there is nothing to measure.

    ``errors`` counts status != 200. Latency and TTFT percentiles are over status-200 requests
    (linear interpolation, as ``percentile_cont`` and numpy's default). ``cost_per_request_usd`` is
    the mean over requests with a known cost. ``out_of_domain_rate`` is out-of-domain requests over
    requests that have an OOD verdict (``ood_scored``).
    """

    experiment: str
    arm: str
    requests: int
    errors: int
    samples: int
    scored: int
    feedback: int
    negative_feedback: int
    feedback_score_mean: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    ttft_p95_s: float | None
    cost_usd: float
    cost_per_request_usd: float | None
    prompt_tokens: int
    completion_tokens: int
    ood_scored: int
    out_of_domain: int
    out_of_domain_rate: float | None


def find_request(db: Database, request_id: str) -> RequestRef | None:
    """The experiment and arm that served ``request_id``, or None when unknown (or purged)."""
    c = Request.__table__.c
    stmt = select(c.id, c.experiment, c.arm, c.created_at).where(c.id == request_id)
    with db.begin() as conn:
        row = conn.execute(stmt).first()
    return None if row is None else RequestRef(row.id, row.experiment, row.arm, row.created_at)


def sentiment_of(score: int | None, thumbs: str | None) -> Sentiment:
    """Thumbs decide when given; else a score of 4-5 is positive, 3 neutral, 1-2 negative."""
    if thumbs is not None:
        return Sentiment.POSITIVE if thumbs == Thumbs.UP else Sentiment.NEGATIVE
    if score is None:
        raise InvalidRequestError("Feedback needs a `score` (1-5) or `thumbs` (up or down).")
    if score >= 4:
        return Sentiment.POSITIVE
    return Sentiment.NEUTRAL if score == 3 else Sentiment.NEGATIVE


def add_feedback(
    db: Database,
    request_id: str,
    score: int | None,
    thumbs: str | None,
    comment: str | None,
    *,
    now: datetime | None = None,
) -> FeedbackRow:
    """Store a user's feedback on ``request_id``; several per request are kept.

    Raises ``InvalidRequestError`` for a score outside 1-5, thumbs other than up/down, or neither
    given; ``NotFoundError`` when the request is unknown (never served, not yet written, or purged).
    """
    if score is not None and not 1 <= score <= 5:
        raise InvalidRequestError("`score` must be an integer from 1 to 5.", param="score")
    if thumbs is not None and thumbs not in (Thumbs.UP, Thumbs.DOWN):
        raise InvalidRequestError("`thumbs` must be `up` or `down`.", param="thumbs")
    sentiment = sentiment_of(score, thumbs)
    if comment is not None:
        comment = comment[:_COMMENT_MAX_CHARS]
    created_at = now or datetime.now(UTC)
    with db.begin() as conn:
        ref = conn.execute(select(Request.experiment, Request.arm).where(Request.id == request_id)).first()
        if ref is None:
            raise NotFoundError(
                f"No request `{request_id}` is known: send the `x-request-id` of a response "
                "(requests are written within seconds and purged after the retention period).",
                param="request_id", code="request_not_found",
            )
        values = {
            "request_id": request_id, "created_at": created_at, "experiment": ref.experiment, "arm": ref.arm,
            "score": score, "thumbs": thumbs, "sentiment": sentiment.value, "comment": comment,
        }
        new_id = conn.execute(insert(Feedback).values(**values).returning(Feedback.id)).scalar_one()
    return FeedbackRow(
        id=new_id, request_id=request_id, experiment=ref.experiment, arm=ref.arm, created_at=created_at,
        score=score, thumbs=thumbs, sentiment=sentiment.value, comment=comment,
    )


def arm_summaries(
    db: Database, experiment: str, since: datetime | None = None, until: datetime | None = None
) -> list[ArmSummary]:
    """Per-arm counts, percentiles, cost and feedback of ``experiment`` in ``[since, until)``, by arm name.

    Bound the window with ``since`` on large tables: SQLite reads the window's latencies into
    memory for the percentiles (PostgreSQL computes them with ``percentile_cont``).
    """
    req = Request.__table__.c
    smp = Sample.__table__.c
    fb = Feedback.__table__.c

    def window(stmt: Select[Any], created_at: Any) -> Select[Any]:
        stmt = stmt.where(created_at >= since) if since is not None else stmt
        return stmt.where(created_at < until) if until is not None else stmt

    requests_q = window(
        select(
            req.arm,
            func.count().label("requests"),
            _count_if(req.status != _OK).label("errors"),
            func.sum(req.cost_usd).label("cost"),
            func.count(req.cost_usd).label("costed"),
            func.sum(req.prompt_tokens).label("prompt"),
            func.sum(req.completion_tokens).label("completion"),
            func.count(req.out_of_domain).label("ood_scored"),
            _count_if(req.out_of_domain.is_(True)).label("ood"),
        ).where(req.experiment == experiment).group_by(req.arm),
        req.created_at,
    )
    samples_q = window(
        select(
            smp.arm, func.count().label("samples"),
            _count_if(smp.state == SampleState.SCORED.value).label("scored"),
        ).where(smp.experiment == experiment).group_by(smp.arm),
        smp.created_at,
    )
    feedback_q = window(
        select(
            fb.arm, func.count().label("feedback"),
            _count_if(fb.sentiment == Sentiment.NEGATIVE.value).label("negative"),
            func.avg(fb.score).label("score_mean"),
        ).where(fb.experiment == experiment).group_by(fb.arm),
        fb.created_at,
    )
    with db.begin() as conn:
        by_arm = {row.arm: row for row in conn.execute(requests_q)}
        samples = {row.arm: row for row in conn.execute(samples_q)}
        feedback = {row.arm: row for row in conn.execute(feedback_q)}
        if db.is_postgres:
            pct = _percentiles_sql(conn, window, experiment)
        else:
            served = window(
                select(req.arm, req.latency_s, req.ttft_s)
                .where(req.experiment == experiment, req.status == _OK),
                req.created_at,
            )
            pct = _percentiles_numpy(conn.execute(served))
    out = []
    for arm in sorted(set(by_arm) | set(samples) | set(feedback)):
        r, s, f = by_arm.get(arm), samples.get(arm), feedback.get(arm)
        costed = int(r.costed) if r else 0
        ood_scored = int(r.ood_scored) if r else 0
        ood = int(r.ood) if r else 0
        cost = float(r.cost or 0.0) if r else 0.0
        p50, p95, ttft95 = pct.get(arm, (None, None, None))
        out.append(ArmSummary(
            experiment=experiment, arm=arm,
            requests=int(r.requests) if r else 0,
            errors=int(r.errors or 0) if r else 0,
            samples=int(s.samples) if s else 0,
            scored=int(s.scored or 0) if s else 0,
            feedback=int(f.feedback) if f else 0,
            negative_feedback=int(f.negative or 0) if f else 0,
            feedback_score_mean=_float(f.score_mean) if f else None,
            latency_p50_s=p50, latency_p95_s=p95, ttft_p95_s=ttft95,
            cost_usd=cost,
            cost_per_request_usd=cost / costed if costed else None,
            prompt_tokens=int(r.prompt or 0) if r else 0,
            completion_tokens=int(r.completion or 0) if r else 0,
            ood_scored=ood_scored, out_of_domain=ood,
            out_of_domain_rate=ood / ood_scored if ood_scored else None,
        ))
    return out


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _float(value: Any) -> float | None:
    # PostgreSQL returns numeric (Decimal) for avg() of an integer column.
    return None if value is None else float(value)


Percentiles = dict[str, tuple[float | None, float | None, float | None]]


def _percentiles_sql(conn: Any, window: Any, experiment: str) -> Percentiles:
    req = Request.__table__.c
    latency = window(
        select(
            req.arm,
            func.percentile_cont(0.5).within_group(req.latency_s).label("p50"),
            func.percentile_cont(0.95).within_group(req.latency_s).label("p95"),
        ).where(req.experiment == experiment, req.status == _OK).group_by(req.arm),
        req.created_at,
    )
    ttft = window(
        select(req.arm, func.percentile_cont(0.95).within_group(req.ttft_s).label("p95"))
        .where(req.experiment == experiment, req.status == _OK, req.ttft_s.is_not(None)).group_by(req.arm),
        req.created_at,
    )
    ttft_by_arm = {row.arm: _float(row.p95) for row in conn.execute(ttft)}
    return {
        row.arm: (_float(row.p50), _float(row.p95), ttft_by_arm.get(row.arm)) for row in conn.execute(latency)
    }


def _percentiles_numpy(rows: Iterable[Sequence[Any]]) -> Percentiles:
    latencies: dict[str, list[float]] = defaultdict(list)
    ttfts: dict[str, list[float]] = defaultdict(list)
    for arm, latency_s, ttft_s in rows:
        latencies[arm].append(latency_s)
        if ttft_s is not None:
            ttfts[arm].append(ttft_s)
    out: Percentiles = {}
    for arm, values in latencies.items():
        p50, p95 = (float(v) for v in np.percentile(np.asarray(values), [50, 95]))
        ttft = ttfts.get(arm)
        out[arm] = (p50, p95, float(np.percentile(np.asarray(ttft), 95)) if ttft else None)
    return out
