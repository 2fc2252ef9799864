"""Reference sets in the database: the imported queries and the fitted, calibrated scorer. Blocking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import delete, insert, select

from service.drift.commands import ImportedReference
from service.store.db import Database
from service.store.models import ReferenceItem, ReferenceSet

__all__ = ["StoredReference", "load_references", "store_reference"]

_ITEMS_PER_INSERT = 1000


@dataclass(frozen=True, slots=True)
class StoredReference:
    experiment: str
    created_at: datetime
    threshold: float
    percentile: float
    blob: bytes


def store_reference(db: Database, experiment: str, imported: ImportedReference, *,
                    now: datetime | None = None) -> StoredReference:
    """Replace ``experiment``'s reference with ``imported`` (queries, threshold, fitted scorer)."""
    now = now or datetime.now(UTC)
    cal = imported.calibration
    blob = cal.to_bytes()
    with db.begin() as conn:
        conn.execute(delete(ReferenceItem).where(ReferenceItem.experiment == experiment))
        conn.execute(delete(ReferenceSet).where(ReferenceSet.experiment == experiment))
        conn.execute(insert(ReferenceSet).values(
            experiment=experiment, created_at=now, source=str(imported.source.path), size=len(imported.texts),
            threshold=cal.threshold, percentile=cal.percentile, backend=str(cal.summary().get("method", "lexical")),
            params=orjson.dumps(imported.summary(), default=str).decode(), index_blob=blob,
        ))
        rows = [{"experiment": experiment, "text": t} for t in imported.texts]
        for i in range(0, len(rows), _ITEMS_PER_INSERT):
            conn.execute(insert(ReferenceItem), rows[i:i + _ITEMS_PER_INSERT])
    return StoredReference(experiment, now, cal.threshold, cal.percentile, blob)


def load_references(db: Database) -> dict[str, StoredReference]:
    """Every experiment's stored scorer (without its queries)."""
    query = select(ReferenceSet.experiment, ReferenceSet.created_at, ReferenceSet.threshold,
                   ReferenceSet.percentile, ReferenceSet.index_blob).where(ReferenceSet.index_blob.is_not(None))
    with db.begin() as conn:
        return {r.experiment: StoredReference(r.experiment, r.created_at, r.threshold, r.percentile, r.index_blob)
                for r in conn.execute(query)}
