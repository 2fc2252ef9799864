"""Request lookup, feedback and per-arm summaries on both dialects, on a hand-made dataset."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from service.errors import InvalidRequestError, NotFoundError
from service.store.db import Database
from service.store.models import Request, Sample
from service.store.queries import add_feedback, arm_summaries, find_request, sentiment_of
from service.store.sink import RequestSink
from tests.support.records import T0, at, make_record

KEY = b"k" * 32


def test_find_request(migrated_db: Database) -> None:
    RequestSink(migrated_db, KEY).write([make_record(1)])
    ref = find_request(migrated_db, "tw-test0000000001")
    assert ref is not None
    assert (ref.experiment, ref.arm, ref.created_at) == ("demo", "fine_tuned", at(T0 + 1))
    assert find_request(migrated_db, "tw-nope") is None


def test_feedback_round_trip(migrated_db: Database) -> None:
    RequestSink(migrated_db, KEY).write([make_record(0), make_record(1)])
    row = add_feedback(migrated_db, "tw-test0000000001", 2, None, "too long", now=at(T0 + 60))
    assert (row.experiment, row.arm, row.score, row.thumbs) == ("demo", "fine_tuned", 2, None)
    assert row.sentiment == "negative"
    assert row.created_at == at(T0 + 60) and row.comment == "too long" and row.id > 0
    second = add_feedback(migrated_db, "tw-test0000000001", None, "up", None)
    assert second.id != row.id and second.sentiment == "positive"

    [base, ft] = arm_summaries(migrated_db, "demo")
    assert (base.arm, base.feedback) == ("base", 0)
    assert (ft.feedback, ft.negative_feedback, ft.feedback_score_mean) == (2, 1, 2.0)


def test_feedback_refusals(migrated_db: Database) -> None:
    RequestSink(migrated_db, KEY).write([make_record(0)])
    with pytest.raises(NotFoundError, match="tw-missing"):
        add_feedback(migrated_db, "tw-missing", 5, None, None)
    for score, thumbs in [(0, None), (6, None), (None, "sideways"), (None, None)]:
        with pytest.raises(InvalidRequestError):
            add_feedback(migrated_db, "tw-test0000000000", score, thumbs, None)


@pytest.mark.parametrize(("score", "thumbs", "expected"), [
    (5, None, "positive"), (4, None, "positive"), (3, None, "neutral"), (2, None, "negative"),
    (1, None, "negative"), (1, "up", "positive"), (5, "down", "negative"), (None, "down", "negative"),
])
def test_sentiment(score: int | None, thumbs: str | None, expected: str) -> None:
    assert sentiment_of(score, thumbs) == expected


def _dataset(db: Database) -> None:
    """base: 10 OK requests (latency 0.1..1.0 s, TTFT i/100 s), 2 errors, 1 shadow; fine_tuned: 4 OK.

    Plus 3 base requests a day earlier, outside the window the test asks for.
    """
    records = []
    for i in range(1, 11):
        records.append(make_record(
            i, arm="base", latency_s=i / 10, ttft_s=i / 100 if i <= 5 else None, cost_usd=0.001 * i,
            prompt_tokens=10, completion_tokens=i, sampled=i <= 4,
        ))
    records.append(make_record(11, arm="base", status=502, outcome="upstream_error", error_kind="http_502",
                               latency_s=9.0, ttft_s=None, cost_usd=None, prompt_tokens=None,
                               completion_tokens=None, sampled=False))
    records.append(make_record(12, arm="base", status=429, outcome="upstream_error", latency_s=8.0,
                               ttft_s=None, cost_usd=None, prompt_tokens=None, completion_tokens=None,
                               sampled=False))
    for j, latency in enumerate([0.4, 0.2, 0.3, 0.1]):
        records.append(make_record(20 + j, arm="fine_tuned", latency_s=latency, ttft_s=0.05, cost_usd=0.002,
                                   prompt_tokens=5, completion_tokens=7, sampled=j < 2))
    for k in range(3):  # a day before the window
        records.append(make_record(30 + k, arm="base", started_at=T0 - 86_400, latency_s=100.0, sampled=True))
    RequestSink(db, KEY).write(records)
    with db.begin() as conn:
        ids = {r.request_id: r for r in records}
        scored = [make_record(i).request_id for i in (1, 2, 3)]
        conn.execute(update(Sample).where(Sample.request_id.in_(scored)).values(state="scored"))
        ood = {1: True, 2: False, 3: False, 4: True, 20: False}
        for i, flag in ood.items():
            rid = make_record(i).request_id
            assert rid in ids
            conn.execute(update(Request).where(Request.id == rid).values(ood_score=0.5, out_of_domain=flag))
    when = at(T0 + 100)
    add_feedback(db, make_record(1).request_id, 5, None, None, now=when)
    add_feedback(db, make_record(2).request_id, 1, None, None, now=when)
    add_feedback(db, make_record(3).request_id, None, "down", None, now=when)
    add_feedback(db, make_record(20).request_id, 4, None, None, now=when)
    add_feedback(db, make_record(30).request_id, 1, None, None, now=at(T0 - 86_000))  # outside the window


def test_arm_summaries(migrated_db: Database) -> None:
    _dataset(migrated_db)
    since = at(T0 - 3600)
    [base, ft] = arm_summaries(migrated_db, "demo", since=since)

    assert (base.experiment, base.arm) == ("demo", "base")
    assert (base.requests, base.errors, base.samples, base.scored) == (12, 2, 4, 3)
    assert (base.feedback, base.negative_feedback) == (3, 2)
    assert base.feedback_score_mean == pytest.approx(3.0)  # (5 + 1) / 2, thumbs carry no score
    # Latency over the 10 status-200 requests 0.1..1.0: linear interpolation at rank q * (n - 1).
    assert base.latency_p50_s == pytest.approx(0.55)  # between 0.5 and 0.6
    assert base.latency_p95_s == pytest.approx(0.955)  # 0.9 + 0.55 * (1.0 - 0.9)
    assert base.ttft_p95_s == pytest.approx(0.048)  # TTFT 0.01..0.05: 0.04 + 0.8 * 0.01
    assert base.cost_usd == pytest.approx(0.055)  # 0.001 * (1 + ... + 10)
    assert base.cost_per_request_usd == pytest.approx(0.0055)  # over the 10 requests with a cost
    assert (base.prompt_tokens, base.completion_tokens) == (100, 55)
    assert (base.ood_scored, base.out_of_domain) == (4, 2)
    assert base.out_of_domain_rate == pytest.approx(0.5)

    assert (ft.requests, ft.errors, ft.samples, ft.scored) == (4, 0, 2, 0)
    assert (ft.feedback, ft.negative_feedback) == (1, 0)
    assert ft.latency_p50_s == pytest.approx(0.25)
    assert ft.latency_p95_s == pytest.approx(0.385)  # 0.3 + 0.85 * 0.1
    assert ft.ttft_p95_s == pytest.approx(0.05)
    assert ft.cost_per_request_usd == pytest.approx(0.002)
    assert (ft.ood_scored, ft.out_of_domain, ft.out_of_domain_rate) == (1, 0, 0.0)
    assert ft.feedback_score_mean == pytest.approx(4.0)


def test_arm_summaries_window(migrated_db: Database) -> None:
    _dataset(migrated_db)
    [everything_base, _] = arm_summaries(migrated_db, "demo")
    assert everything_base.requests == 15 and everything_base.feedback == 4
    [old_base] = arm_summaries(migrated_db, "demo", until=at(T0 - 3600))
    assert (old_base.arm, old_base.requests, old_base.samples, old_base.feedback) == ("base", 3, 3, 1)
    assert old_base.latency_p95_s == pytest.approx(100.0)
    assert old_base.ood_scored == 0 and old_base.out_of_domain_rate is None
    assert arm_summaries(migrated_db, "demo", since=at(T0) + timedelta(days=1)) == []
    assert arm_summaries(migrated_db, "other") == []
