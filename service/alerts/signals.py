"""Read the detectors' latest readings from ``signals`` as evaluations for the state machine.

The detector job writes one ``signals`` row per (detector, experiment, arm) each run; the latest
row younger than ``max_age_s`` is that instance's current evaluation. An older one no longer
counts, so an alert whose detector stopped reporting resolves instead of firing for ever.
Blocking (one read).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from service.alerts.state import Evaluation
from service.store.db import Database
from service.store.models import Signal

__all__ = ["latest_evaluations"]


def _evidence(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    loaded = orjson.loads(text)
    return loaded if isinstance(loaded, dict) else {"value": loaded}


def latest_evaluations(db: Database, now: datetime, max_age_s: float) -> list[Evaluation]:
    """The newest signal per (detector, experiment, arm) written in the last ``max_age_s`` seconds."""
    query = (
        select(Signal.detector, Signal.experiment, Signal.arm, Signal.active, Signal.value, Signal.threshold,
               Signal.evidence, Signal.id)
        .where(Signal.created_at >= now - timedelta(seconds=max_age_s))
        .order_by(Signal.created_at, Signal.id)
    )
    latest: dict[tuple[str, str, str | None], Evaluation] = {}
    with db.begin() as conn:
        for row in conn.execute(query):
            # ordered oldest first: a later row of the same instance replaces the earlier one
            latest[(row.detector, row.experiment, row.arm)] = Evaluation(
                alert=row.detector, experiment=row.experiment, arm=row.arm, active=bool(row.active),
                value=row.value, threshold=row.threshold, evidence=_evidence(row.evidence),
            )
    return list(latest.values())
