"""Hand-made experiment rows for the report and detector tests: requests, samples, scores, feedback.

Rows go in with SQLAlchemy Core into a database migrated with ``service.store.migrate.upgrade``,
so the report and the detector job are tested through the same tables the service writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert

from service.store.db import Database
from service.store.models import Feedback, Request, Sample, Score, Sentiment

#: a fixed "now" so tests never depend on the clock (2026-11-24 12:00:00 UTC)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EVALUATORS = ("relevance", "coherence")


@dataclass
class Rows:
    """Collects rows, then :meth:`write` inserts them in one transaction."""

    experiment: str = "demo"
    requests: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)

    def request(
        self, arm: str, at: datetime, *, status: int = 200, latency_s: float = 1.0,
        ttft_s: float | None = 0.2, cost_usd: float | None = 0.001, ood: bool | None = False,
        logprob: float | None = None, shadow: bool = False,
    ) -> str:  # fmt: skip
        rid = f"tw-{self.experiment}-{len(self.requests):08d}"
        self.requests.append({
            "id": rid, "created_at": at, "experiment": self.experiment, "arm": arm, "upstream": f"{arm}-up",
            "stream": False, "status": status, "outcome": "ok" if status == 200 else "upstream_error",
            "error_kind": None, "latency_s": latency_s, "ttft_s": ttft_s, "upstream_latency_s": latency_s,
            "overhead_s": 0.001, "prompt_tokens": 20, "completion_tokens": 50, "cost_usd": cost_usd,
            "unit_hash": None, "sampled": False, "shadow": shadow, "query": "q", "query_chars": 1,
            "ood_score": None, "out_of_domain": ood, "logprob_mean": logprob,
        })  # fmt: skip
        return rid

    def score(self, rid: str, scores: dict[str, float]) -> None:
        """Mark ``rid`` sampled and scored with ``scores`` (evaluator -> 1-5)."""
        req = next(r for r in reversed(self.requests) if r["id"] == rid)
        req["sampled"] = True
        self.samples.append({
            "request_id": rid, "created_at": req["created_at"], "experiment": self.experiment,
            "arm": req["arm"], "state": "scored", "attempts": 1, "scored_at": req["created_at"],
        })  # fmt: skip
        for evaluator, value in scores.items():
            self.scores.append({
                "request_id": rid, "experiment": self.experiment, "arm": req["arm"], "evaluator": evaluator,
                "score": float(value), "passed": None, "reason": None, "judge_model": "sim",
                "created_at": req["created_at"],
            })  # fmt: skip

    def thumbs(self, rid: str, up: bool) -> None:
        req = next(r for r in reversed(self.requests) if r["id"] == rid)
        self.feedback.append({
            "request_id": rid, "created_at": req["created_at"], "experiment": self.experiment,
            "arm": req["arm"], "score": None, "thumbs": "up" if up else "down",
            "sentiment": (Sentiment.POSITIVE if up else Sentiment.NEGATIVE).value, "comment": None,
        })  # fmt: skip

    def write(self, db: Database) -> None:
        with db.begin() as conn:
            for table, rows in ((Request, self.requests), (Sample, self.samples), (Score, self.scores),
                                (Feedback, self.feedback)):  # fmt: skip
                if rows:
                    conn.execute(insert(table), rows)


def judge_scores(rng: np.random.Generator, mean: float, n: int) -> np.ndarray[Any, Any]:
    """``n`` integer 1-5 judge scores around ``mean`` (sd ~0.8)."""
    return np.clip(np.rint(rng.normal(mean, 0.8, n)), 1, 5)


def deploy_dataset(
    rows: Rows, *, n: int = 400, hours: float = 6.0, seed: int = 7, base_mean: float = 3.3,
    ft_mean: float = 4.1, ft_ood_mean: float | None = None,
) -> None:  # fmt: skip
    """A 50/50 experiment over ``hours`` before :data:`NOW` where the fine-tune is better: higher
    scores on both evaluators, faster (p95), cheaper, more thumbs up. Every request is scored;
    every 10th is out of domain. ``ft_ood_mean`` sets the fine-tune's out-of-domain quality
    (default: its usual mean), for the overfitting case."""
    rng = np.random.default_rng(seed)
    start = NOW - timedelta(hours=hours)
    step = timedelta(hours=hours) / n
    for arm, mean, lat_median, cost in (("base", base_mean, 2.0, 0.008), ("fine_tuned", ft_mean, 0.9, 0.003)):
        lat = rng.lognormal(np.log(lat_median), 0.3, n)
        for i in range(n):
            ood = i % 10 == 0
            m = ft_ood_mean if (ood and arm == "fine_tuned" and ft_ood_mean is not None) else mean
            rid = rows.request(arm, start + step * i, latency_s=float(lat[i]), ttft_s=float(lat[i]) / 4,
                               cost_usd=cost, ood=ood)  # fmt: skip
            rows.score(rid, {ev: float(judge_scores(rng, m, 1)[0]) for ev in EVALUATORS})
            if i % 4 == 0:
                rows.thumbs(rid, up=bool(rng.random() < (m - 1) / 4))
