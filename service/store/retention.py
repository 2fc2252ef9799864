"""Retention: forget user text after ``sample_days``, whole requests after ``request_days``.

Work is done in bounded batches, each its own short transaction, so a purge never holds a lock
(SQLite's write lock, PostgreSQL row locks) for longer than one batch and can stop anywhere.

- after ``sample_days``: ``samples`` text (messages, query, response_text, context) and
  ``requests.query`` are nulled, ``samples.text_purged_at`` is set, a still-pending sample is
  marked failed (there is nothing left to judge), and feedback comments are nulled;
- after ``request_days``: ``requests`` rows are deleted, and with them (``ON DELETE CASCADE``)
  their samples, scores and feedback; old ``signals`` and finished ``webhook_deliveries`` too.

Blocking: run it from a job thread. Must run once across replicas (the job takes the lock).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Delete, Update, case, delete, select, update

from service.store.db import Database
from service.store.models import (
    DeliveryState,
    Feedback,
    Request,
    Sample,
    SampleState,
    Signal,
    WebhookDelivery,
)

__all__ = ["PurgeResult", "purge"]

log = logging.getLogger(__name__)

_PURGED_BEFORE_SCORING = "text purged by retention before it was scored"


@dataclass(frozen=True, slots=True)
class PurgeResult:
    samples_purged: int
    queries_purged: int
    comments_purged: int
    requests_deleted: int
    signals_deleted: int
    deliveries_deleted: int
    batches: int


def purge(
    db: Database, sample_days: int, request_days: int, batch: int = 1000, now: datetime | None = None
) -> PurgeResult:
    """Apply retention as of ``now`` (default: the current UTC time) in transactions of ``batch`` rows.

    Raises ``ValueError`` for non-positive days or batch; database errors propagate (what was
    committed before stays committed: the next run carries on).
    """
    if sample_days < 1 or request_days < 1 or batch < 1:
        raise ValueError("sample_days, request_days and batch must be at least 1")
    now = now or datetime.now(UTC)
    text_cutoff = now - timedelta(days=sample_days)
    row_cutoff = now - timedelta(days=request_days)
    batches = _Batches(db, batch)

    s = Sample.__table__.c
    pending = s.state == SampleState.PENDING.value
    samples = batches.run(
        s.request_id, s.created_at, text_cutoff, s.text_purged_at.is_(None),
        lambda ids: update(Sample).where(s.request_id.in_(ids)).values(
            messages=None, query=None, response_text=None, context=None, text_purged_at=now,
            state=case((pending, SampleState.FAILED.value), else_=s.state),
            last_error=case((pending, _PURGED_BEFORE_SCORING), else_=s.last_error),
        ),
    )
    r = Request.__table__.c
    queries = batches.run(
        r.id, r.created_at, text_cutoff, r.query.is_not(None),
        lambda ids: update(Request).where(r.id.in_(ids)).values(query=None),
    )
    f = Feedback.__table__.c
    comments = batches.run(
        f.id, f.created_at, text_cutoff, f.comment.is_not(None),
        lambda ids: update(Feedback).where(f.id.in_(ids)).values(comment=None),
    )
    requests = batches.run(
        r.id, r.created_at, row_cutoff, None, lambda ids: delete(Request).where(r.id.in_(ids)),
    )
    g = Signal.__table__.c
    signals = batches.run(
        g.id, g.created_at, row_cutoff, None, lambda ids: delete(Signal).where(g.id.in_(ids)),
    )
    w = WebhookDelivery.__table__.c
    finished = w.state.in_((DeliveryState.DELIVERED.value, DeliveryState.FAILED.value))
    deliveries = batches.run(
        w.id, w.created_at, row_cutoff, finished, lambda ids: delete(WebhookDelivery).where(w.id.in_(ids)),
    )
    result = PurgeResult(
        samples_purged=samples, queries_purged=queries, comments_purged=comments, requests_deleted=requests,
        signals_deleted=signals, deliveries_deleted=deliveries, batches=batches.count,
    )
    log.info("store.retention_purged", extra={k: getattr(result, k) for k in result.__slots__})
    return result


class _Batches:
    """Runs "pick up to N rows older than the cutoff, change them" in separate transactions.

    Rows are walked in ``created_at`` order from a cursor (the last batch's newest time), so each
    batch reads only index entries it has not passed yet: the work is linear in the rows, never
    quadratic. A change always takes its rows out of the filter (nulls the text it tests for,
    sets ``text_purged_at``, or deletes), so rows tied with the cursor are never picked twice.
    """

    def __init__(self, db: Database, size: int) -> None:
        self.db = db
        self.size = size
        self.count = 0

    def run(
        self,
        key: ColumnElement[Any],
        created_at: ColumnElement[datetime],
        cutoff: datetime,
        condition: ColumnElement[bool] | None,
        change: Callable[[list[Any]], Update | Delete],
    ) -> int:
        total = 0
        cursor: datetime | None = None
        while True:
            pick = select(key, created_at).where(created_at < cutoff).order_by(created_at).limit(self.size)
            if condition is not None:
                pick = pick.where(condition)
            if cursor is not None:
                pick = pick.where(created_at >= cursor)
            with self.db.begin() as conn:
                rows = conn.execute(pick).all()
                if not rows:
                    return total
                conn.execute(change([row[0] for row in rows]))
            self.count += 1
            total += len(rows)
            if len(rows) < self.size:
                return total
            cursor = rows[-1][1]
