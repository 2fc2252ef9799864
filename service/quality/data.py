"""Load one experiment's observations from the store as per-arm numpy arrays, for reports and detectors.

One pass of four short queries (requests, scores, feedback, sample counts) over a window of the
requests' ``created_at``; everything after that is numpy on the arrays. Scores and feedback are
placed in time by the request they judge (when the traffic happened, not when the judge ran), so a
window means "the traffic of that window", and each carries its request's out-of-domain verdict
for the in-domain / out-of-domain split.

Choices:

- **Feedback score** on 0-1, higher is better: thumbs up = 1, thumbs down = 0 (thumbs win when both
  are given, as in ``store.queries.sentiment_of``), a 1-5 score s becomes (s - 1) / 4. One scale
  for both kinds, so a mean is a satisfaction rate. ``negative`` follows the stored sentiment.
- **Latency and TTFT** are over status-200 requests only (an error's duration is not a latency).
- **Cost** is over requests with a known cost (``cost_usd`` not null), errors included: they cost.
- **Low confidence** per request: :func:`service.drift.confidence.low_confidence` on the request's
  mean token logprob, else on its judge scores; unknown (NaN) when neither exists.
- **Routed** requests exclude shadow copies: only they measure the routing split (sample-ratio
  mismatch); every other count includes them (a shadow copy is real traffic for the comparison).

Blocking (SQLAlchemy): call from a job thread, the CLI or a ``def`` route. Bound the window with
``since`` on large tables: the window's rows are read into memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, case, func, select

from service.drift.confidence import low_confidence
from service.quality.compare import ArmData
from service.store.db import Database
from service.store.models import Feedback, Request, Sample, SampleState, Score, Sentiment, Thumbs

__all__ = ["ArmObservations", "Split", "feedback_value", "load_observations"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
_OK = 200


class Split(StrEnum):
    """Which traffic a comparison looks at: all of it, or one side of the out-of-domain verdict."""

    ALL = "all"
    IN_DOMAIN = "in_domain"
    OUT_OF_DOMAIN = "out_of_domain"


def feedback_value(score: int | None, thumbs: str | None) -> float:
    """A feedback row on 0-1 (higher is better): thumbs up 1, down 0, else (score - 1) / 4; NaN if neither."""
    if thumbs is not None:
        return 1.0 if thumbs == Thumbs.UP else 0.0
    if score is None:
        return float("nan")
    return (float(score) - 1.0) / 4.0


def _empty() -> FloatArray:
    return np.empty(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class ArmObservations:
    """One arm's rows as arrays. Times are Unix seconds (UTC); ``*_ood`` arrays hold 1.0 (out of
    domain), 0.0 (in domain) or NaN (no verdict) for the row's request. Request arrays are in time order.
    """

    arm: str
    request_at: FloatArray = field(default_factory=_empty)
    ok: BoolArray = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    shadow: BoolArray = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    latency_s: FloatArray = field(default_factory=_empty)
    ttft_s: FloatArray = field(default_factory=_empty)  # NaN where not measured
    cost_usd: FloatArray = field(default_factory=_empty)  # NaN where unknown
    ood: FloatArray = field(default_factory=_empty)
    low_confidence: FloatArray = field(default_factory=_empty)  # 1.0, 0.0 or NaN
    scores: dict[str, FloatArray] = field(default_factory=dict)
    score_at: dict[str, FloatArray] = field(default_factory=dict)
    score_ood: dict[str, FloatArray] = field(default_factory=dict)
    feedback: FloatArray = field(default_factory=_empty)
    feedback_at: FloatArray = field(default_factory=_empty)
    feedback_ood: FloatArray = field(default_factory=_empty)
    feedback_negative: BoolArray = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    samples: int = 0
    scored: int = 0

    @property
    def requests(self) -> int:
        return int(self.request_at.size)

    @property
    def errors(self) -> int:
        return int((~self.ok).sum())

    @property
    def routed(self) -> int:
        """Requests the router sent here (shadow copies excluded): the sample-ratio count."""
        return int((~self.shadow).sum())

    @property
    def served_latency_s(self) -> FloatArray:
        """Latencies of status-200 requests, in time order (seconds)."""
        return self.latency_s[self.ok]

    @property
    def served_ttft_s(self) -> FloatArray:
        ttft = self.ttft_s[self.ok]
        return ttft[np.isfinite(ttft)]

    @property
    def known_cost_usd(self) -> FloatArray:
        return self.cost_usd[np.isfinite(self.cost_usd)]

    def rate(self, flags: FloatArray) -> tuple[int, int]:
        """(hits, n) of a 1/0/NaN array: rows with a verdict, and how many of them are 1."""
        known = flags[np.isfinite(flags)]
        return int((known > 0.5).sum()), int(known.size)

    def arm_data(self, split: Split = Split.ALL) -> ArmData:
        """The arrays :func:`service.quality.compare.compare_arms` takes, for all traffic or one split."""

        def pick(ood: FloatArray) -> BoolArray:
            if split is Split.ALL:
                return np.ones(ood.size, dtype=np.bool_)
            chosen: BoolArray = ood == (1.0 if split is Split.OUT_OF_DOMAIN else 0.0)
            return chosen

        req = pick(self.ood)
        ok = self.ok & req
        ttft = self.ttft_s[ok]
        cost = self.cost_usd[req]
        return ArmData(
            name=self.arm,
            scores={ev: s[pick(self.score_ood[ev])] for ev, s in self.scores.items()},
            feedback=self.feedback[pick(self.feedback_ood)],
            latency_s=self.latency_s[ok],
            ttft_s=ttft[np.isfinite(ttft)],
            cost_usd=cost[np.isfinite(cost)],
        )

    def window(self, start: float | None, end: float | None) -> ArmObservations:
        """The rows whose request time is in ``[start, end)`` (Unix seconds; None: unbounded).
        ``samples`` and ``scored`` are whole-load counts and are kept as they are."""

        def mask(at: FloatArray) -> BoolArray:
            m = np.ones(at.size, dtype=np.bool_)
            if start is not None:
                m &= at >= start
            if end is not None:
                m &= at < end
            return m

        r, f = mask(self.request_at), mask(self.feedback_at)
        s = {ev: mask(at) for ev, at in self.score_at.items()}
        return replace(
            self,
            request_at=self.request_at[r], ok=self.ok[r], shadow=self.shadow[r], latency_s=self.latency_s[r],
            ttft_s=self.ttft_s[r], cost_usd=self.cost_usd[r], ood=self.ood[r],
            low_confidence=self.low_confidence[r],
            scores={ev: v[s[ev]] for ev, v in self.scores.items()},
            score_at={ev: v[s[ev]] for ev, v in self.score_at.items()},
            score_ood={ev: v[s[ev]] for ev, v in self.score_ood.items()},
            feedback=self.feedback[f], feedback_at=self.feedback_at[f], feedback_ood=self.feedback_ood[f],
            feedback_negative=self.feedback_negative[f],
        )  # fmt: skip


def _window(stmt: Select[Any], column: Any, since: datetime | None, until: datetime | None) -> Select[Any]:
    if since is not None:
        stmt = stmt.where(column >= since)
    if until is not None:
        stmt = stmt.where(column < until)
    return stmt


def load_observations(
    db: Database, experiment: str, *, since: datetime | None = None, until: datetime | None = None
) -> dict[str, ArmObservations]:
    """Every arm of ``experiment`` with traffic, scores or feedback in ``[since, until)`` (aware UTC),
    by arm name (sorted). Empty when the experiment has no data there. Blocking; raises what
    SQLAlchemy raises.
    """
    req, sc, fb, smp = Request.__table__.c, Score.__table__.c, Feedback.__table__.c, Sample.__table__.c
    requests_q = _window(
        select(req.id, req.arm, req.created_at, req.status, req.shadow, req.latency_s, req.ttft_s,
               req.cost_usd, req.out_of_domain, req.logprob_mean)
        .where(req.experiment == experiment).order_by(req.created_at, req.id),
        req.created_at, since, until,
    )  # fmt: skip
    scores_q = _window(
        select(sc.request_id, sc.arm, sc.evaluator, sc.score, req.created_at, req.out_of_domain)
        .join(Request.__table__, req.id == sc.request_id)
        .where(sc.experiment == experiment)
        .order_by(req.created_at, sc.request_id),
        req.created_at,
        since,
        until,
    )
    feedback_q = _window(
        select(fb.arm, fb.score, fb.thumbs, fb.sentiment, req.created_at, req.out_of_domain)
        .join(Request.__table__, req.id == fb.request_id)
        .where(fb.experiment == experiment)
        .order_by(req.created_at, fb.id),
        req.created_at,
        since,
        until,
    )
    samples_q = _window(
        select(smp.arm, func.count().label("samples"),
               func.sum(case((smp.state == SampleState.SCORED.value, 1), else_=0)).label("scored"))
        .where(smp.experiment == experiment).group_by(smp.arm),
        smp.created_at, since, until,
    )  # fmt: skip
    with db.begin() as conn:
        request_rows = conn.execute(requests_q).all()
        score_rows = conn.execute(scores_q).all()
        feedback_rows = conn.execute(feedback_q).all()
        sample_rows = {row.arm: row for row in conn.execute(samples_q)}
    return _assemble(request_rows, score_rows, feedback_rows, sample_rows)


def _columns(rows: Sequence[Any], width: int) -> list[tuple[Any, ...]]:
    """Rows to columns (``width`` empty columns when there is no row)."""
    return list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]


def _floats(values: Sequence[Any]) -> FloatArray:
    """A float64 array; None becomes NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _flags(values: Sequence[Any]) -> FloatArray:
    """1.0 / 0.0 for true / false, NaN for None."""
    return np.array([np.nan if v is None else float(bool(v)) for v in values], dtype=np.float64)


def _by_arm(arms: Sequence[str]) -> dict[str, NDArray[np.intp]]:
    """Row indices per arm, in row order."""
    keys = np.asarray(arms, dtype=object)
    return {arm: np.flatnonzero(keys == arm) for arm in dict.fromkeys(arms)}


def _assemble(
    request_rows: Sequence[Any],
    score_rows: Sequence[Any],
    feedback_rows: Sequence[Any],
    sample_rows: dict[str, Any],
) -> dict[str, ArmObservations]:
    # Column-wise with numpy: a per-row Python loop costs ~25 us a request, this ~5 us.
    s_rid, s_arm, s_ev, s_score, s_at, s_ood = _columns(score_rows, 6)
    s_at_f = np.array([t.timestamp() for t in s_at], dtype=np.float64)
    s_score_f, s_ood_f = _floats(s_score), _flags(s_ood)
    judge: dict[str, dict[str, float]] = defaultdict(dict)
    for rid, ev, value in zip(s_rid, s_ev, s_score, strict=True):
        judge[rid][ev] = float(value)
    (r_id, r_arm, r_at, r_status, r_shadow, r_lat, r_ttft, r_cost, r_ood, r_logprob) = _columns(
        request_rows, 10
    )
    low = _flags([low_confidence(lp, judge.get(rid)) for rid, lp in zip(r_id, r_logprob, strict=True)])
    r_at_f = np.array([t.timestamp() for t in r_at], dtype=np.float64)
    ok = np.array([st == _OK for st in r_status], dtype=np.bool_)
    shadow = np.array([bool(x) for x in r_shadow], dtype=np.bool_)
    lat, ttft, cost, ood = _floats(r_lat), _floats(r_ttft), _floats(r_cost), _flags(r_ood)
    f_arm, f_score, f_thumbs, f_sent, f_at, f_ood = _columns(feedback_rows, 6)
    f_value = np.array(
        [feedback_value(sc, th) for sc, th in zip(f_score, f_thumbs, strict=True)], dtype=np.float64
    )
    f_at_f = np.array([t.timestamp() for t in f_at], dtype=np.float64)
    f_ood_f = _flags(f_ood)
    f_neg = np.array([x == Sentiment.NEGATIVE.value for x in f_sent], dtype=np.bool_)
    req_idx, fb_idx = _by_arm(r_arm), _by_arm(f_arm)
    score_idx = _by_arm([f"{arm}\0{ev}" for arm, ev in zip(s_arm, s_ev, strict=True)])
    out: dict[str, ArmObservations] = {}
    none = np.empty(0, dtype=np.intp)
    for arm in sorted(set(req_idx) | set(s_arm) | set(fb_idx) | set(sample_rows)):
        r, f = req_idx.get(arm, none), fb_idx.get(arm, none)
        evs = sorted(key.split("\0", 1)[1] for key in score_idx if key.split("\0", 1)[0] == arm)
        sidx = {ev: score_idx[f"{arm}\0{ev}"] for ev in evs}
        sample = sample_rows.get(arm)
        out[arm] = ArmObservations(
            arm=arm, request_at=r_at_f[r], ok=ok[r], shadow=shadow[r], latency_s=lat[r], ttft_s=ttft[r],
            cost_usd=cost[r], ood=ood[r], low_confidence=low[r],
            scores={ev: s_score_f[i] for ev, i in sidx.items()},
            score_at={ev: s_at_f[i] for ev, i in sidx.items()},
            score_ood={ev: s_ood_f[i] for ev, i in sidx.items()},
            feedback=f_value[f], feedback_at=f_at_f[f], feedback_ood=f_ood_f[f], feedback_negative=f_neg[f],
            samples=int(sample.samples) if sample else 0, scored=int(sample.scored or 0) if sample else 0,
        )  # fmt: skip
    return out
