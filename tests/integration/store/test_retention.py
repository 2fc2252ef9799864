"""Retention on both dialects: the right rows lose their text or go, in bounded batches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update

from service.store.db import Database
from service.store.models import Feedback, Request, Sample, Score, Signal, WebhookDelivery
from service.store.queries import add_feedback
from service.store.retention import purge
from service.store.sink import RequestSink
from tests.support.records import T0, at, make_record

DAY = 86_400.0
NOW = at(T0)


def _ages(db: Database) -> None:
    """Requests aged 1, 10 and 100 days (5 of each; every other one sampled), with scores and feedback."""
    records = []
    for age_days, base in ((1, 0), (10, 100), (100, 200)):
        for i in range(base, base + 5):
            records.append(make_record(i, started_at=T0 - age_days * DAY, sampled=i % 2 == 0))
    RequestSink(db, b"key").write(records)
    with db.begin() as conn:
        for r in records:
            if r.sampled:
                conn.execute(insert(Score).values(
                    request_id=r.request_id, experiment=r.experiment, arm=r.arm, evaluator="relevance",
                    score=4.0, created_at=at(r.started_at),
                ))
        # one old sample already scored: it must keep its state when its text goes
        conn.execute(update(Sample).where(Sample.request_id == make_record(100).request_id)
                     .values(state="scored"))
        for age_days in (1, 100):
            conn.execute(insert(Signal).values(
                created_at=NOW - timedelta(days=age_days), experiment="demo", detector="ood_rate", value=0.1,
                active=False,
            ))
            for state in ("pending", "delivered"):
                conn.execute(insert(WebhookDelivery).values(
                    created_at=NOW - timedelta(days=age_days), alert_key="a|demo|", target="oncall",
                    payload="{}", state=state,
                ))
    for r in records:
        add_feedback(db, r.request_id, 1, None, f"comment on {r.request_id}", now=at(r.started_at))


def _scalar(db: Database, stmt: object) -> int:
    with db.begin() as conn:
        return int(conn.execute(stmt).scalar_one())  # type: ignore[call-overload]


def test_purge(migrated_db: Database) -> None:
    db = migrated_db
    _ages(db)
    result = purge(db, sample_days=7, request_days=30, batch=2, now=NOW)

    # 10-day-old rows lose their text; 100-day-old rows are gone; 1-day-old rows are untouched.
    assert result.requests_deleted == 5
    # text goes before rows do, so both the 10- and the 100-day-old rows count
    assert result.samples_purged == 6  # sampled: 100, 102, 104 and 200, 202, 204
    assert result.queries_purged == 10
    assert result.comments_purged == 10
    assert (result.signals_deleted, result.deliveries_deleted) == (1, 1)
    assert result.batches >= 12  # 2 rows per transaction

    with db.session() as s:
        remaining = {r.id: r for r in s.scalars(select(Request))}
        assert sorted(remaining) == sorted(make_record(i).request_id for i in (*range(5), *range(100, 105)))
        for i in range(5):
            assert remaining[make_record(i).request_id].query is not None
        for i in range(100, 105):
            row = remaining[make_record(i).request_id]
            assert row.query is None and row.query_chars is not None and row.unit_hash is not None
        samples = {x.request_id: x for x in s.scalars(select(Sample))}
        assert len(samples) == 3 + 3
        fresh = samples[make_record(0).request_id]
        assert fresh.messages is not None and fresh.response_text is not None and fresh.text_purged_at is None
        for i in (100, 102, 104):
            old = samples[make_record(i).request_id]
            assert (old.messages, old.query, old.response_text, old.context) == (None, None, None, None)
            assert old.text_purged_at == NOW
        assert samples[make_record(100).request_id].state == "scored"
        assert samples[make_record(102).request_id].state == "failed"  # was pending: nothing left to judge
        comments = {f.request_id: f.comment for f in s.scalars(select(Feedback))}
        assert len(comments) == 10
        assert comments[make_record(0).request_id] is not None
        assert comments[make_record(100).request_id] is None
    # the cascade took the deleted requests' scores and feedback with them
    assert _scalar(db, select(func.count()).select_from(Score)) == 6
    assert _scalar(db, select(func.count()).select_from(Signal)) == 1
    assert _scalar(db, select(func.count()).select_from(WebhookDelivery)) == 3  # an old pending one stays

    again = purge(db, sample_days=7, request_days=30, batch=2, now=NOW)
    assert (again.samples_purged, again.queries_purged, again.requests_deleted, again.batches) == (0, 0, 0, 0)


def test_purge_with_one_big_batch_gives_the_same_counts(migrated_db: Database) -> None:
    _ages(migrated_db)
    result = purge(migrated_db, sample_days=7, request_days=30, batch=10_000, now=NOW)
    assert (result.samples_purged, result.queries_purged, result.requests_deleted) == (6, 10, 5)


def test_purge_refuses_nonsense(migrated_db: Database) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        purge(migrated_db, sample_days=0, request_days=30)
