"""The scorer: claims unscored samples, runs the judge on them, stores one score per evaluator.

A pass (:meth:`Scorer.run_once`, blocking, run by the scheduler in a thread or by
``tunewatch score --once``) repeats until nothing is claimable or its time budget is spent:

1. **Claim** up to ``batch_size`` samples of one experiment, in one transaction: those ``pending``
   whose ``next_attempt_at`` has come, and those ``claimed`` whose lease (``claimed_until``)
   expired (a scorer died). PostgreSQL locks the candidate rows with ``FOR UPDATE SKIP LOCKED``, so
   concurrent scorers take disjoint rows; SQLite's transactions start with ``BEGIN IMMEDIATE``
   (``store/db.py``): one writer at a time, the same select-then-update is atomic. The claim sets
   ``state=claimed``, ``claimed_by``, the lease, and counts the attempt.
2. **Judge** every applicable evaluator not yet scored for each sample (a retry re-runs only the
   missing ones), off the event loop, through :class:`~service.quality.evaluators.Judge`.
3. **Store** the scores (``unique(request_id, evaluator)``: an insert that conflicts is skipped,
   so a sample is never scored twice), then release the sample only if we still hold its claim:
   ``scored`` when every evaluator answered, else back to ``pending`` with ``next_attempt_at``
   pushed back exponentially and the reason in ``last_error``, or ``failed`` once ``max_attempts``
   attempts are spent. A judge that is down, slow, rate-limiting or babbling loses nothing.

Metrics: ``tunewatch_quality_score`` per stored score, ``tunewatch_samples_total{state=scored|failed}``,
``tunewatch_scorer_backlog_samples``; ``tunewatch_judge_calls_total`` is counted by the evaluators.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from service.quality.evaluators import EvalOutcome, EvaluatorSuite, Judge, JudgeInput, Outcome
from service.quality.judge import QualityConfig
from service.store.db import Database
from service.store.models import Sample, SampleState, Score
from service.telemetry.metrics import QUALITY_SCORE, SAMPLES, SCORER_BACKLOG

__all__ = ["ScoreRunResult", "Scorer", "backoff_s"]

log = logging.getLogger(__name__)

_SAMPLES: Table = Sample.__table__  # type: ignore[assignment]  # a declarative Table
_SCORES: Table = Score.__table__  # type: ignore[assignment]  # a declarative Table
_MAX_ERROR = 2000


@dataclass(frozen=True, slots=True)
class ScoreRunResult:
    """What one pass did: samples claimed, fully scored, put back for a retry, given up on."""

    claimed: int = 0
    scored: int = 0
    retried: int = 0
    failed: int = 0
    scores_written: int = 0

    def __add__(self, other: ScoreRunResult) -> ScoreRunResult:
        return ScoreRunResult(
            self.claimed + other.claimed,
            self.scored + other.scored,
            self.retried + other.retried,
            self.failed + other.failed,
            self.scores_written + other.scores_written,
        )


@dataclass(frozen=True, slots=True)
class _Claimed:
    request_id: str
    arm: str
    attempts: int
    item: JudgeInput | None  # None: the text is gone (purged), nothing to judge


def backoff_s(quality: QualityConfig, attempts: int) -> float:
    """Seconds to wait before the attempt after ``attempts`` failed ones (capped exponential)."""
    return float(min(quality.backoff_max_s, quality.backoff_base_s * 2 ** max(0, attempts - 1)))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _query_of(row: Any) -> str:
    """The sample's query: its ``query`` column, else the last user message of ``messages``."""
    if row.query:
        return str(row.query)
    try:
        messages = json.loads(row.messages or "[]")
    except ValueError:
        return ""
    for m in reversed(messages if isinstance(messages, list) else []):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class Scorer:
    """Scores the samples of the experiments in ``quality`` (name → its quality config).

    ``judges`` maps an experiment to its judge; by default each gets an :class:`EvaluatorSuite`
    built (lazily, on the first sample) from its config. Blocking; not for the event loop.
    ``close()`` stops the suites it built.
    """

    def __init__(
        self,
        database: Database,
        quality: Mapping[str, QualityConfig],
        *,
        judges: Mapping[str, Judge] | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        run_budget_s: float = 60.0,
    ) -> None:
        self._db = database
        self._quality = dict(quality)
        self._owned: list[EvaluatorSuite] = []
        self._judges: dict[str, Judge] = dict(judges or {})
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._run_budget_s = run_budget_s

    def _judge(self, experiment: str) -> Judge:
        judge = self._judges.get(experiment)
        if judge is None:
            suite = EvaluatorSuite(self._quality[experiment], name=f"judge-{experiment}")
            self._owned.append(suite)
            judge = self._judges[experiment] = suite
        return judge

    def close(self) -> None:
        """Stop the evaluator suites this scorer built (blocking, a few seconds at most)."""
        for suite in self._owned:
            suite.close()
        self._owned.clear()

    def run_once(self) -> ScoreRunResult:
        """One pass over every configured experiment, until nothing is claimable or the budget is spent.

        Blocking (database and judge calls). Raises only on database errors.
        """
        total = ScoreRunResult()
        deadline = time.monotonic() + self._run_budget_s
        for experiment in self._quality:
            while time.monotonic() < deadline:
                result = self._score_batch(experiment)
                total += result
                if result.claimed == 0:
                    break
        self._update_backlog()
        if total.claimed:
            log.info(
                "scorer.pass_done",
                extra={
                    "claimed": total.claimed,
                    "scored": total.scored,
                    "retried": total.retried,
                    "failed": total.failed,
                    "scores_written": total.scores_written,
                },
            )
        return total

    # --- claim -------------------------------------------------------------------------------------

    def _claimable(self, experiment: str, now: datetime) -> Any:
        due = or_(_SAMPLES.c.next_attempt_at.is_(None), _SAMPLES.c.next_attempt_at <= now)
        return and_(
            _SAMPLES.c.experiment == experiment,
            or_(
                and_(_SAMPLES.c.state == SampleState.PENDING.value, due),
                and_(_SAMPLES.c.state == SampleState.CLAIMED.value, _SAMPLES.c.claimed_until < now),
            ),
        )

    def _claim(self, experiment: str) -> list[_Claimed]:
        quality = self._quality[experiment]
        now = self._clock()
        with self._db.begin() as conn:
            candidates = (
                select(_SAMPLES.c.request_id)
                .where(self._claimable(experiment, now))
                .order_by(_SAMPLES.c.created_at)
                .limit(quality.batch_size)
            )
            if self._db.is_postgres:
                candidates = candidates.with_for_update(skip_locked=True)
            ids = list(conn.execute(candidates).scalars())
            if not ids:
                return []
            conn.execute(
                update(_SAMPLES)
                .where(_SAMPLES.c.request_id.in_(ids), self._claimable(experiment, now))
                .values(
                    state=SampleState.CLAIMED.value,
                    claimed_by=self.worker_id,
                    claimed_until=now + timedelta(seconds=quality.lease_s),
                    attempts=_SAMPLES.c.attempts + 1,
                )
            )
            rows = conn.execute(
                select(_SAMPLES).where(
                    _SAMPLES.c.request_id.in_(ids),
                    _SAMPLES.c.claimed_by == self.worker_id,
                    _SAMPLES.c.state == SampleState.CLAIMED.value,
                )
            ).all()
        out = []
        for row in rows:
            item = None
            if row.response_text is not None:
                item = JudgeInput(query=_query_of(row), response=row.response_text, context=row.context)
            out.append(_Claimed(row.request_id, row.arm, row.attempts, item))
        return out

    # --- judge and store ---------------------------------------------------------------------------

    def _score_batch(self, experiment: str) -> ScoreRunResult:
        claimed = self._claim(experiment)
        if not claimed:
            return ScoreRunResult()
        quality = self._quality[experiment]
        judge = self._judge(experiment)
        done = self._already_scored([c.request_id for c in claimed])
        todo = [(c, c.item) for c in claimed if c.item is not None]
        wanted = [
            [n for n in judge.evaluators_for(item) if n.value not in done.get(c.request_id, set())]
            for c, item in todo
        ]
        outcomes = judge.evaluate([item for _, item in todo], wanted) if todo else []
        by_id = {c.request_id: o for (c, _), o in zip(todo, outcomes, strict=True)}
        result = ScoreRunResult(claimed=len(claimed))
        now = self._clock()
        with self._db.begin() as conn:
            for c in claimed:
                result += self._settle(conn, experiment, quality, c, by_id.get(c.request_id), now)
        return result

    def _already_scored(self, ids: Sequence[str]) -> dict[str, set[str]]:
        with self._db.begin() as conn:
            rows = conn.execute(
                select(_SCORES.c.request_id, _SCORES.c.evaluator).where(_SCORES.c.request_id.in_(ids))
            ).all()
        out: dict[str, set[str]] = {}
        for request_id, evaluator in rows:
            out.setdefault(request_id, set()).add(evaluator)
        return out

    def _insert_score(
        self, conn: Connection, experiment: str, c: _Claimed, o: EvalOutcome, now: datetime
    ) -> bool:
        values = {
            "request_id": c.request_id,
            "experiment": experiment,
            "arm": c.arm,
            "evaluator": o.evaluator.value,
            "score": o.score,
            "passed": o.passed,
            "reason": o.reason,
            "judge_model": o.judge_model[:128],
            "created_at": now,
        }
        insert = pg_insert if self._db.is_postgres else sqlite_insert
        stmt = (
            insert(_SCORES)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["request_id", "evaluator"])
        )
        return bool(conn.execute(stmt).rowcount)

    def _settle(
        self,
        conn: Connection,
        experiment: str,
        quality: QualityConfig,
        c: _Claimed,
        outcomes: list[EvalOutcome] | None,
        now: datetime,
    ) -> ScoreRunResult:
        """Store ``c``'s scores and release it: scored, back to pending with a backoff, or failed."""
        written = 0
        errors: list[str] = []
        if c.item is None:
            errors.append("the sample's text was purged before it was scored")
        for o in outcomes or []:
            if o.outcome is Outcome.OK and o.score is not None:
                if self._insert_score(conn, experiment, c, o, now):
                    written += 1
                    QUALITY_SCORE.labels(
                        experiment=experiment, arm=c.arm, evaluator=o.evaluator.value
                    ).observe(o.score)
            elif o.outcome is not Outcome.SKIPPED:
                errors.append(f"{o.evaluator.value}: {o.reason}")
        mine = and_(
            _SAMPLES.c.request_id == c.request_id,
            _SAMPLES.c.claimed_by == self.worker_id,
            _SAMPLES.c.state == SampleState.CLAIMED.value,
        )
        release: dict[str, Any] = {"claimed_by": None, "claimed_until": None}
        if not errors:
            values = {**release, "state": SampleState.SCORED.value, "scored_at": now, "last_error": None}
            state, result = "scored", ScoreRunResult(scored=1, scores_written=written)
        elif c.item is None or c.attempts >= quality.max_attempts:
            values = {
                **release,
                "state": SampleState.FAILED.value,
                "last_error": "; ".join(errors)[:_MAX_ERROR],
            }
            state, result = "failed", ScoreRunResult(failed=1, scores_written=written)
        else:
            retry_at = now + timedelta(seconds=backoff_s(quality, c.attempts))
            values = {
                **release,
                "state": SampleState.PENDING.value,
                "next_attempt_at": retry_at,
                "last_error": "; ".join(errors)[:_MAX_ERROR],
            }
            state, result = "", ScoreRunResult(retried=1, scores_written=written)
        if not conn.execute(update(_SAMPLES).where(mine).values(**values)).rowcount:
            # Our lease expired and another scorer took the sample over: it settles it, not us.
            log.warning("scorer.claim_lost", extra={"request_id": c.request_id, "experiment": experiment})
            return ScoreRunResult(scores_written=written)
        if state:
            SAMPLES.labels(experiment=experiment, arm=c.arm, state=state).inc()
        if state == "failed":
            log.warning("scorer.sample_failed", extra={"request_id": c.request_id, "attempts": c.attempts})
        return result

    def _update_backlog(self) -> None:
        with self._db.begin() as conn:
            rows = conn.execute(
                select(_SAMPLES.c.experiment, func.count())
                .where(
                    _SAMPLES.c.experiment.in_(list(self._quality)),
                    _SAMPLES.c.state.in_([SampleState.PENDING.value, SampleState.CLAIMED.value]),
                )
                .group_by(_SAMPLES.c.experiment)
            ).all()
        counts = {experiment: n for experiment, n in rows}
        for experiment in self._quality:
            SCORER_BACKLOG.labels(experiment=experiment).set(counts.get(experiment, 0))
