"""The out-of-domain job: score every recorded query against its experiment's reference.

Runs off the hot path on a schedule: takes requests whose query has no score yet, scores them
in batches with the experiment's calibrated scorer, stores the score and flag, counts the
out-of-domain ones in ``tunewatch_out_of_domain_total``, and drops the query text of requests
that were not sampled (only sampled requests keep their text). Blocking.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import bindparam, select, update

from service.drift.ood import Calibration
from service.drift.references import load_references
from service.store.db import Database
from service.store.models import Request
from service.telemetry.metrics import OUT_OF_DOMAIN

__all__ = ["OodScorer"]

log = logging.getLogger(__name__)


class OodScorer:
    """Keeps each experiment's fitted scorer in memory until its reference changes."""

    def __init__(self, db: Database, experiments: Collection[str], *, batch: int = 2000) -> None:
        self._db = db
        self._experiments = set(experiments)
        self._batch = batch
        self._cache: dict[str, tuple[datetime, Calibration]] = {}

    def _calibrations(self) -> dict[str, Calibration]:
        out = {}
        for name, ref in load_references(self._db).items():
            cached = self._cache.get(name)
            if cached is None or cached[0] != ref.created_at:
                self._cache[name] = (ref.created_at, Calibration.from_bytes(ref.blob))
                log.info("drift.reference_loaded", extra={"experiment": name, "threshold": ref.threshold})
            out[name] = self._cache[name][1]
        return out

    def run_once(self) -> int:
        """Score what is waiting (up to one batch per experiment); returns how many were scored."""
        done = 0
        for name, cal in self._calibrations().items():
            if name in self._experiments:
                done += self._score(name, cal)
        return done

    def _score(self, experiment: str, cal: Calibration) -> int:
        r = Request.__table__.c
        pending = (select(r.id, r.arm, r.query, r.sampled)
                   .where(r.experiment == experiment, r.ood_score.is_(None), r.query.is_not(None))
                   .order_by(r.created_at).limit(self._batch))
        with self._db.begin() as conn:
            rows = conn.execute(pending).all()
            if not rows:
                return 0
            scores, flags = cal.score([row.query for row in rows])
            params = [({"rid": row.id, "score": float(s), "flag": bool(f)}, bool(row.sampled))
                      for row, s, f in zip(rows, scores, flags, strict=True)]
            for keep in (True, False):
                stmt = (update(Request).where(r.id == bindparam("rid"))
                        .values(ood_score=bindparam("score"), out_of_domain=bindparam("flag")))
                if not keep:
                    stmt = stmt.values(query=None)  # not sampled: only the score and flag stay
                batch = [p for p, sampled in params if sampled is keep]
                if batch:
                    conn.execute(stmt, batch)
        for row, flag in zip(rows, flags, strict=True):
            if flag:
                OUT_OF_DOMAIN.labels(experiment, row.arm).inc()
        return len(rows)
