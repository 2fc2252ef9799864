"""The persisted stage and weights of each experiment (``experiment_states``). Blocking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import insert, select, update

from service.store.db import Database
from service.store.models import ExperimentStateRow

__all__ = ["ExperimentState", "load_states", "save_state"]


@dataclass(frozen=True, slots=True)
class ExperimentState:
    experiment: str
    stage: str
    weights: dict[str, float]
    stage_started_at: datetime
    updated_at: datetime


def _state(row: ExperimentStateRow) -> ExperimentState:
    weights = {str(k): float(v) for k, v in orjson.loads(row.weights).items()}
    return ExperimentState(row.experiment, row.stage, weights, row.stage_started_at, row.updated_at)


def load_states(db: Database) -> dict[str, ExperimentState]:
    """Every stored experiment state, by experiment name."""
    with db.session() as session:
        return {row.experiment: _state(row) for row in session.scalars(select(ExperimentStateRow))}


def save_state(
    db: Database, experiment: str, stage: str, weights: dict[str, float], *, now: datetime | None = None
) -> ExperimentState:
    """Store ``experiment``'s stage and weights; ``stage_started_at`` moves only when either changed."""
    now = now or datetime.now(UTC)
    payload = orjson.dumps(dict(sorted(weights.items()))).decode()
    with db.session() as session:
        row = session.get(ExperimentStateRow, experiment)
        if row is None:
            session.execute(insert(ExperimentStateRow).values(
                experiment=experiment, stage=stage, weights=payload, stage_started_at=now, updated_at=now))
            started = now
        else:
            changed = row.stage != stage or orjson.loads(row.weights) != orjson.loads(payload)
            started = now if changed else row.stage_started_at
            session.execute(update(ExperimentStateRow).where(ExperimentStateRow.experiment == experiment).values(
                stage=stage, weights=payload, stage_started_at=started, updated_at=now))
    return ExperimentState(experiment, stage, dict(weights), started, now)
