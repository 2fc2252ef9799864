"""Offline evaluation runs and their judge scores (``tunewatch eval``). Blocking."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import insert, select

from service.store.db import Database
from service.store.models import EvalRun, EvalScore

__all__ = ["load_eval_scores", "save_eval"]


def save_eval(db: Database, run_id: str, experiment: str, dataset: str, n: int, report_json: str,
              scores: Iterable[tuple[str, int, str, float]], *, now: datetime | None = None) -> None:
    """Store a run: its JSON report and every (arm, dataset row, evaluator, score)."""
    rows = [{"run_id": run_id, "arm": a, "row": r, "evaluator": e, "score": s} for a, r, e, s in scores]
    with db.begin() as conn:
        conn.execute(insert(EvalRun).values(id=run_id, created_at=now or datetime.now(UTC), experiment=experiment,
                                            dataset=dataset, n=n, report=report_json))
        if rows:
            conn.execute(insert(EvalScore), rows)


def load_eval_scores(db: Database, run_id: str) -> dict[str, dict[str, list[float]]]:
    """arm -> evaluator -> scores (in dataset row order) of run ``run_id``."""
    out: dict[str, dict[str, list[float]]] = {}
    query = (select(EvalScore.arm, EvalScore.evaluator, EvalScore.score)
             .where(EvalScore.run_id == run_id).order_by(EvalScore.row))
    with db.begin() as conn:
        for arm, evaluator, score in conn.execute(query):
            out.setdefault(arm, {}).setdefault(evaluator, []).append(score)
    return out
