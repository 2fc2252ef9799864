"""The alert state machine over a real (SQLite) database with a hand-moved clock."""

from __future__ import annotations

import itertools
import math

import orjson
import pytest
from prometheus_client import REGISTRY

from service.alerts.outbox import Delivery, list_deliveries
from service.alerts.signals import latest_evaluations
from service.alerts.state import Evaluation, StateMachine, list_alerts
from service.config import AlertRule, AlertsConfig, ReceiverConfig, Severity
from service.drift.detectors import DetectorResult
from service.store.db import Database
from service.store.models import Signal
from service.telemetry.metrics import ALERTS_FIRING
from tests.unit.alerts.conftest import FakeClock

ALERT = "quality_below_threshold"
_experiments = itertools.count(1)


@pytest.fixture
def experiment() -> str:
    # a name per test, so the gauge series of one test never sees another's
    return f"exp{next(_experiments)}"


def config(**rule: float | str | bool) -> AlertsConfig:
    return AlertsConfig(
        public_url="https://tw.example.com",
        receivers=[ReceiverConfig(name="hook", url="http://127.0.0.1:9/x", secret_env="TW_TEST_SECRET")],
        rules={ALERT: AlertRule.model_validate({"for_s": 60, "renotify_interval_s": 3600, **rule})},
    )


def ev(experiment: str, active: bool, value: float = 3.1, arm: str | None = "fine_tuned") -> Evaluation:
    return Evaluation(
        alert=ALERT,
        experiment=experiment,
        arm=arm,
        active=active,
        value=value,
        threshold=3.5,
        evidence={"n": 40, "ci_high": 3.3},
    )


def sent(db: Database) -> list[Delivery]:
    return list(reversed(list_deliveries(db, limit=1000)))


def firing_gauge(experiment: str) -> float | None:
    return REGISTRY.get_sample_value("tunewatch_alerts_firing", {"alert": ALERT, "experiment": experiment})


def test_pending_then_firing_after_for_s(db: Database, clock: FakeClock, experiment: str) -> None:
    sm = StateMachine(db, config(for_s=60), clock)
    run = sm.evaluate([ev(experiment, True)])
    assert [(t.from_state, t.to_state, t.notified) for t in run.transitions] == [(None, "pending", False)]
    assert sent(db) == []
    clock.advance(59)
    assert sm.evaluate([ev(experiment, True)]).transitions == []
    assert [a.state for a in list_alerts(db)] == ["pending"]
    started = clock.now().replace(second=0)
    clock.advance(1)
    run = sm.evaluate([ev(experiment, True, value=3.0)])
    assert [(t.from_state, t.to_state, t.notified) for t in run.transitions] == [("pending", "firing", True)]
    assert run.deliveries == 1 and run.firing == 1
    [delivery] = sent(db)
    assert (
        delivery.target == "hook"
        and delivery.state == "pending"
        and delivery.alert_key == f"{ALERT}|{experiment}|fine_tuned"
    )
    body = delivery.payload
    assert body["status"] == "firing" and body["value"] == 3.0 and body["threshold"] == 3.5
    assert body["starts_at"] == started.isoformat().replace("+00:00", "Z") and body["ends_at"] is None
    assert body["links"]["report"] == f"https://tw.example.com/admin/experiments/{experiment}/report"
    assert firing_gauge(experiment) == 1


def test_no_duplicate_notifications_and_renotify_after_the_interval(
    db: Database, clock: FakeClock, experiment: str
) -> None:
    sm = StateMachine(db, config(for_s=0, renotify_interval_s=600), clock)
    sm.evaluate([ev(experiment, True)])
    assert len(sent(db)) == 1
    for _ in range(5):
        clock.advance(100)
        assert sm.evaluate([ev(experiment, True)]).deliveries == 0
    assert len(sent(db)) == 1
    clock.advance(100)  # 600 s since the firing notification
    run = sm.evaluate([ev(experiment, True)])
    assert run.deliveries == 1 and run.transitions[0].renotify
    clock.advance(599)
    assert sm.evaluate([ev(experiment, True)]).deliveries == 0
    assert [d.payload["status"] for d in sent(db)] == ["firing", "firing"]


def test_resolved_once_when_it_stops_holding(db: Database, clock: FakeClock, experiment: str) -> None:
    sm = StateMachine(db, config(for_s=0), clock)
    sm.evaluate([ev(experiment, True)])
    clock.advance(30)
    run = sm.evaluate([ev(experiment, False, value=3.8)])
    assert [(t.from_state, t.to_state) for t in run.transitions] == [("firing", "resolved")]
    clock.advance(30)
    assert sm.evaluate([ev(experiment, False)]).deliveries == 0
    firing, resolved = sent(db)
    assert (firing.payload["status"], resolved.payload["status"]) == ("firing", "resolved")
    assert resolved.payload["ends_at"] == "2026-11-24T12:00:30Z" and resolved.payload["value"] == 3.8
    assert resolved.payload["dedup_key"] == firing.payload["dedup_key"]
    assert firing_gauge(experiment) == 0
    assert [a.state for a in list_alerts(db)] == ["resolved"]


def test_fires_again_after_resolving(db: Database, clock: FakeClock, experiment: str) -> None:
    sm = StateMachine(db, config(for_s=10), clock)
    for active in (True, True, False, True, True):
        sm.evaluate([ev(experiment, active)])
        clock.advance(10)
    assert [d.payload["status"] for d in sent(db)] == ["firing", "resolved", "firing"]


def test_a_missing_evaluation_counts_as_not_holding(db: Database, clock: FakeClock, experiment: str) -> None:
    sm = StateMachine(db, config(for_s=0), clock)
    sm.evaluate([ev(experiment, True)])
    clock.advance(5)
    assert [t.to_state for t in sm.evaluate([]).transitions] == ["resolved"]


def test_pending_that_stops_holding_is_forgotten_silently(
    db: Database, clock: FakeClock, experiment: str
) -> None:
    sm = StateMachine(db, config(for_s=60), clock)
    sm.evaluate([ev(experiment, True)])
    clock.advance(30)
    run = sm.evaluate([ev(experiment, False)])
    assert [(t.from_state, t.to_state, t.notified) for t in run.transitions] == [("pending", None, False)]
    assert list_alerts(db) == [] and sent(db) == []
    clock.advance(30)  # the for_s clock restarts: 30 s of holding is not 60
    sm.evaluate([ev(experiment, True)])
    clock.advance(30)
    sm.evaluate([ev(experiment, True)])
    assert sent(db) == []


def test_keep_firing_for_rides_out_a_flap(db: Database, clock: FakeClock, experiment: str) -> None:
    sm = StateMachine(db, config(for_s=0, keep_firing_for_s=120), clock)
    sm.evaluate([ev(experiment, True)])
    clock.advance(60)
    assert sm.evaluate([ev(experiment, False)]).transitions == []  # a dip: still firing
    assert [a.state for a in list_alerts(db)] == ["firing"]
    clock.advance(60)
    sm.evaluate([ev(experiment, True)])  # back: the keep-firing clock resets
    clock.advance(60)
    sm.evaluate([ev(experiment, False)])
    clock.advance(119)
    assert sm.evaluate([ev(experiment, False)]).transitions == []
    clock.advance(1)
    assert [t.to_state for t in sm.evaluate([ev(experiment, False)]).transitions] == ["resolved"]
    assert [d.payload["status"] for d in sent(db)] == ["firing", "resolved"]


def test_a_new_state_machine_over_the_same_database_continues(
    sqlite_url: str, clock: FakeClock, experiment: str
) -> None:
    first_db = Database(sqlite_url)
    StateMachine(first_db, config(for_s=60), clock).evaluate([ev(experiment, True)])
    first_db.dispose()
    second_db = Database(sqlite_url)  # a restart, or another replica
    try:
        sm = StateMachine(second_db, config(for_s=60), clock)
        clock.advance(60)
        run = sm.evaluate([ev(experiment, True)])
        assert [(t.from_state, t.to_state) for t in run.transitions] == [("pending", "firing")]
        clock.advance(10)
        assert (
            StateMachine(second_db, config(for_s=60), clock).evaluate([ev(experiment, True)]).deliveries == 0
        )
        assert len(sent(second_db)) == 1
    finally:
        second_db.dispose()


def test_receivers_get_only_the_severities_they_take(db: Database, clock: FakeClock, experiment: str) -> None:
    cfg = AlertsConfig(
        receivers=[
            ReceiverConfig(
                name="pager", url="http://127.0.0.1:9/p", secret_env="S", severities=[Severity.PAGE]
            ),
            ReceiverConfig(
                name="tickets", url="http://127.0.0.1:9/t", secret_env="S", severities=[Severity.TICKET]
            ),
            ReceiverConfig(name="all", url="http://127.0.0.1:9/a", secret_env="S"),
        ],
        rules={ALERT: AlertRule(for_s=0, severity=Severity.PAGE)},
    )
    StateMachine(db, cfg, clock).evaluate([ev(experiment, True)])
    assert sorted(d.target for d in sent(db)) == ["all", "pager"]
    assert {d.payload["severity"] for d in sent(db)} == {"page"}


def test_arms_are_separate_instances_and_the_gauge_counts_them(
    db: Database, clock: FakeClock, experiment: str
) -> None:
    sm = StateMachine(db, config(for_s=0), clock)
    sm.evaluate([ev(experiment, True, arm="base"), ev(experiment, True, arm="fine_tuned")])
    assert firing_gauge(experiment) == 2
    sm.evaluate([ev(experiment, True, arm="base")])
    assert firing_gauge(experiment) == 1


def test_a_disabled_rule_never_fires(db: Database, clock: FakeClock, experiment: str) -> None:
    sm = StateMachine(db, config(for_s=0, enabled=False), clock)
    assert sm.evaluate([ev(experiment, True)]).transitions == []
    assert sent(db) == []


def test_nan_values_and_detector_results_are_stored_as_json(
    db: Database, clock: FakeClock, experiment: str
) -> None:
    result = DetectorResult(
        detector=ALERT, active=True, value=math.nan, threshold=3.5, evidence={"mean": None, "n": 0}
    )
    StateMachine(db, config(for_s=0), clock).evaluate([Evaluation.from_result(result, experiment, None)])
    [delivery] = sent(db)
    assert delivery.payload["value"] is None and delivery.payload["arm"] is None
    assert delivery.alert_key == f"{ALERT}|{experiment}|"
    assert list_alerts(db)[0].to_dict()["value"] is None


def test_resolved_states_are_forgotten_after_the_retention(
    db: Database, clock: FakeClock, experiment: str
) -> None:
    cfg = config(for_s=0).model_copy(update={"resolved_retention_s": 3600.0})
    sm = StateMachine(db, cfg, clock)
    sm.evaluate([ev(experiment, True)])
    sm.evaluate([])
    clock.advance(3600)
    sm.evaluate([])
    assert list_alerts(db) == []


def test_latest_evaluations_reads_the_newest_fresh_signal(
    db: Database, clock: FakeClock, experiment: str
) -> None:
    now = clock.now()
    from datetime import timedelta

    rows = [
        (now - timedelta(seconds=1000), "fine_tuned", True, 2.9),  # too old
        (now - timedelta(seconds=120), "fine_tuned", True, 3.0),
        (now - timedelta(seconds=60), "fine_tuned", False, 3.6),  # newest for the arm
        (now - timedelta(seconds=60), "base", True, 3.2),
        (now - timedelta(seconds=950), "other", True, 1.0),  # too old: absent
    ]
    with db.session() as session:
        for created_at, arm, active, value in rows:
            session.add(
                Signal(
                    created_at=created_at,
                    experiment=experiment,
                    arm=arm,
                    detector=ALERT,
                    value=value,
                    threshold=3.5,
                    active=active,
                    evidence=orjson.dumps({"n": 10}).decode(),
                )
            )
    found = {e.arm: e for e in latest_evaluations(db, now, max_age_s=900)}
    assert set(found) == {"fine_tuned", "base"}
    assert (found["fine_tuned"].active, found["fine_tuned"].value) == (False, 3.6)
    assert found["base"].active and found["base"].evidence == {"n": 10}


def test_another_replica_refreshes_its_gauge_from_the_stored_states(
    sqlite_url: str, clock: FakeClock, experiment: str
) -> None:
    db = Database(sqlite_url)
    try:
        StateMachine(db, config(for_s=0), clock).evaluate([ev(experiment, True)])
        ALERTS_FIRING.labels(ALERT, experiment).set(0)  # as on a replica that never evaluated
        assert StateMachine(db, config(for_s=0), clock).refresh_gauge() == 1
        assert firing_gauge(experiment) == 1
    finally:
        db.dispose()
