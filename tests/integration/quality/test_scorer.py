"""The scorer on a migrated SQLite and PostgreSQL, against the simulated judge over real HTTP."""

from __future__ import annotations

import socket
import statistics
import threading
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from service.quality.evaluators import EvalOutcome, EvaluatorSuite, JudgeInput
from service.quality.judge import EvaluatorName
from service.quality.scorer import Scorer
from service.store.db import Database
from service.store.models import Sample, SampleState, Score
from tests.integration.quality.conftest import IN_DOMAIN, OFF_TOPIC, put_samples, quality_for


class Clock:
    """A settable clock: the scorer's backoff is tested without waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def suite(judge_url: str) -> Iterator[EvaluatorSuite]:
    s = EvaluatorSuite(quality_for(judge_url))
    yield s
    s.close()


def _samples(db: Database) -> dict[str, tuple[str, int, str | None]]:
    with db.session() as s:
        rows = s.execute(select(Sample.request_id, Sample.state, Sample.attempts, Sample.last_error)).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _scores(db: Database) -> list[tuple[str, str, str, float, str | None]]:
    with db.session() as s:
        rows = s.execute(
            select(Score.request_id, Score.arm, Score.evaluator, Score.score, Score.judge_model)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_evaluator_and_arm_is_scored(
    migrated_db: Database, judge_url: str, suite: EvaluatorSuite
) -> None:
    rows = [
        (arm, q, "Assigned risk plans place drivers insurers refuse." if i == 0 else None)
        for i, q in enumerate(IN_DOMAIN)
        for arm in ("base", "fine_tuned")
    ]
    ids = put_samples(migrated_db, rows)
    before = _metric("tunewatch_quality_score_count", experiment="demo", arm="fine_tuned", evaluator="tone")
    scorer = Scorer(migrated_db, {"demo": quality_for(judge_url)}, judges={"demo": suite})
    result = scorer.run_once()
    assert (result.claimed, result.scored, result.failed) == (len(ids), len(ids), 0)
    assert {state for state, _, _ in _samples(migrated_db).values()} == {SampleState.SCORED.value}
    scores = _scores(migrated_db)
    per_sample = Counter(r[0] for r in scores)
    assert per_sample[ids[0]] == 5 and per_sample[ids[1]] == 5  # groundedness only where there is a context
    assert all(per_sample[i] == 4 for i in ids[2:])
    assert {(r[1], r[2]) for r in scores} == {
        (a, e.value) for a in ("base", "fine_tuned") for e in EvaluatorName
    }
    assert all(1 <= r[3] <= 5 and r[4] for r in scores)
    after = _metric("tunewatch_quality_score_count", experiment="demo", arm="fine_tuned", evaluator="tone")
    assert after - before == len(IN_DOMAIN)
    tone = {
        arm: statistics.mean(r[3] for r in scores if r[1] == arm and r[2] == "tone")
        for arm in ("base", "fine_tuned")
    }
    assert tone["fine_tuned"] > tone["base"] + 1
    assert scorer.run_once().claimed == 0  # nothing is scored twice


def test_off_topic_the_base_arm_is_not_worse(
    migrated_db: Database, judge_url: str, suite: EvaluatorSuite
) -> None:
    put_samples(migrated_db, [(arm, q, None) for q in OFF_TOPIC for arm in ("base", "fine_tuned")])
    Scorer(migrated_db, {"demo": quality_for(judge_url)}, judges={"demo": suite}).run_once()
    scores = _scores(migrated_db)

    def mean(arm: str, evaluator: str) -> float:
        return statistics.mean(r[3] for r in scores if r[1] == arm and r[2] == evaluator)

    assert mean("base", "relevance") > mean("fine_tuned", "relevance")
    assert mean("base", "coherence") >= mean("fine_tuned", "coherence")


@pytest.mark.parametrize(
    ("marker", "reason"),
    [
        (" #sim:429", "HTTP 429"),
        (" #sim:500", "HTTP 500"),
        (" #judge:garbage", "not JSON"),
        (" #judge:noscore", "without a usable score"),
        (" #sim:timeout", "timed out"),
    ],
)
def test_a_failing_judge_loses_nothing(
    migrated_db: Database, judge_url: str, marker: str, reason: str
) -> None:
    # A short timeout only where the judge hangs (3 s): elsewhere a busy CI machine must not time out.
    timeout_s = 1.0 if "timeout" in marker else 5.0
    quality = quality_for(judge_url, timeout_s=timeout_s, evaluators=["relevance", "fluency"])
    suite = EvaluatorSuite(quality)
    clock = Clock()
    ok_id, bad_id = put_samples(
        migrated_db, [("fine_tuned", IN_DOMAIN[0], None), (f"base|{marker}", IN_DOMAIN[1], None)]
    )
    failed_before = _metric("tunewatch_samples_total", experiment="demo", arm="base", state="failed")
    scorer = Scorer(migrated_db, {"demo": quality}, judges={"demo": suite}, clock=clock)
    try:
        first = scorer.run_once()
        assert (first.scored, first.retried, first.failed) == (1, 1, 0)
        state, attempts, error = _samples(migrated_db)[bad_id]
        assert (state, attempts) == (SampleState.PENDING.value, 1)
        assert error is not None and reason in error
        assert scorer.run_once().claimed == 0  # backing off: not due yet
        clock.now += timedelta(seconds=61)
        second = scorer.run_once()
        assert (second.claimed, second.failed) == (1, 1)
    finally:
        suite.close()
    state, attempts, error = _samples(migrated_db)[bad_id]
    assert (state, attempts) == (SampleState.FAILED.value, 2)
    assert error is not None and reason in error
    assert _samples(migrated_db)[ok_id][0] == SampleState.SCORED.value
    assert not [r for r in _scores(migrated_db) if r[0] == bad_id]
    assert (
        _metric("tunewatch_samples_total", experiment="demo", arm="base", state="failed") - failed_before == 1
    )


def test_a_judge_that_is_down_loses_nothing(migrated_db: Database, judge_url: str) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    quality = quality_for(dead, evaluators=["coherence"], max_attempts=3)
    suite = EvaluatorSuite(quality)
    (sample_id,) = put_samples(migrated_db, [("base", IN_DOMAIN[2], None)])
    try:
        result = Scorer(migrated_db, {"demo": quality}, judges={"demo": suite}).run_once()
    finally:
        suite.close()
    assert result.retried == 1
    state, attempts, error = _samples(migrated_db)[sample_id]
    assert (state, attempts) == (SampleState.PENDING.value, 1)
    assert error is not None and "APIConnectionError" in error
    # The judge is back: the same sample is scored once it is due.
    later = Clock()
    later.now += timedelta(hours=1)
    fixed = Scorer(migrated_db, {"demo": quality_for(judge_url, evaluators=["coherence"])}, clock=later)
    try:
        assert fixed.run_once().scored == 1
    finally:
        fixed.close()
    assert _samples(migrated_db)[sample_id][0] == SampleState.SCORED.value


def test_a_partly_scored_sample_only_reruns_what_is_missing(migrated_db: Database, judge_url: str) -> None:
    quality = quality_for(judge_url, evaluators=["relevance", "tone"])
    suite = EvaluatorSuite(quality)
    clock = Clock()
    # The sample's text carries a 429 marker; the wrapper strips it except for tone's first call.
    (sample_id,) = put_samples(migrated_db, [("fine_tuned| #sim:429", IN_DOMAIN[3], None)])
    calls: list[int] = []

    class Counting:
        def evaluators_for(self, item: JudgeInput) -> list[EvaluatorName]:
            return suite.evaluators_for(item)

        def evaluate(
            self, items: Sequence[JudgeInput], only: Sequence[Collection[EvaluatorName]] | None = None
        ) -> list[list[EvalOutcome]]:
            calls.append(sum(len(o) for o in only) if only is not None else -1)
            clean = [JudgeInput(i.query, i.response.replace(" #sim:429", ""), i.context) for i in items]
            # first pass: relevance succeeds, tone is asked with the fault still in place
            if len(calls) == 1:
                ok = suite.evaluate(clean, [{EvaluatorName.RELEVANCE}])
                bad = suite.evaluate(items, [{EvaluatorName.TONE}])
                return [a + b for a, b in zip(ok, bad, strict=True)]
            return suite.evaluate(clean, only)

    scorer = Scorer(migrated_db, {"demo": quality}, judges={"demo": Counting()}, clock=clock)
    try:
        assert scorer.run_once().retried == 1
        clock.now += timedelta(seconds=61)
        assert scorer.run_once().scored == 1
    finally:
        suite.close()
    assert calls == [2, 1]  # the retry asked only for the missing tone score
    assert sorted(r[2] for r in _scores(migrated_db) if r[0] == sample_id) == ["relevance", "tone"]


@pytest.mark.postgres
def test_two_scorers_on_postgres_score_each_sample_exactly_once(pg_database_url: str, judge_url: str) -> None:
    from service.store.migrate import upgrade

    upgrade(pg_database_url)
    dbs = [Database(pg_database_url), Database(pg_database_url)]
    quality = quality_for(judge_url, evaluators=["relevance", "fluency"], batch_size=3)
    rows = [(arm, q, None) for q in IN_DOMAIN + OFF_TOPIC for arm in ("base", "fine_tuned")] * 2
    ids = put_samples(dbs[0], rows)
    judged: list[str] = []
    lock = threading.Lock()
    suites = [EvaluatorSuite(quality), EvaluatorSuite(quality)]

    class Recording:
        def __init__(self, inner: EvaluatorSuite) -> None:
            self.inner = inner

        def evaluators_for(self, item: JudgeInput) -> list[EvaluatorName]:
            return self.inner.evaluators_for(item)

        def evaluate(
            self, items: Sequence[JudgeInput], only: Sequence[Collection[EvaluatorName]] | None = None
        ) -> list[list[EvalOutcome]]:
            with lock:
                judged.extend(i.response for i in items)
            return self.inner.evaluate(items, only)

    scorers = [
        Scorer(db, {"demo": quality}, judges={"demo": Recording(s)}, worker_id=f"w{n}")
        for n, (db, s) in enumerate(zip(dbs, suites, strict=True))
    ]
    for s in suites:
        s.start()  # built before the race, so both scorers compete from the first claim
    results = []
    start = threading.Barrier(2)

    def run(scorer: Scorer) -> None:
        start.wait(timeout=10)
        results.append(scorer.run_once())

    threads = [threading.Thread(target=run, args=(s,)) for s in scorers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for s in suites:
            s.close()
        for db in dbs:
            db.dispose()
    assert sum(r.scored for r in results) == len(ids)
    assert sum(r.claimed for r in results) == len(ids)
    assert all(r.claimed > 0 for r in results)  # both took part
    assert len(judged) == len(ids)  # no sample went to the judge twice
    check = Database(pg_database_url)
    try:
        with check.session() as session:
            rows_ = session.execute(select(Score.request_id, Score.evaluator)).all()
    finally:
        check.dispose()
    assert len(rows_) == 2 * len(ids) == len(set(rows_))
