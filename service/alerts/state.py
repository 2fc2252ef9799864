"""The alert state machine: detector evaluations in, transitions and outbox deliveries out.

One alert instance per ``(alert, experiment, arm)`` (``alert`` is the detector name), its state
persisted in ``alert_states`` so that a restart, or another replica, carries on where it was::

    (none) ──holds──► pending ──held for_s──► firing ──stops holding for keep_firing_for_s──► resolved
              ▲          │ stops holding: forgotten, nothing sent     │ still holding every
              └──────────┴──── holds again ◄── resolved ◄─────────────┘ renotify_interval_s: re-notify

As Prometheus's ``for:`` and ``keep_firing_for:``. Exactly one notification per transition to
firing or resolved, plus one per re-notify interval while firing: the decision is taken from the
persisted state inside the transaction that writes the new state and enqueues the deliveries
(the outbox pattern), so evaluating the same input twice sends nothing twice. The input is the
*complete* current set: an instance with no evaluation counts as not holding (its detector no
longer reports it), like a Prometheus series that disappears.

Blocking (one transaction per :meth:`StateMachine.evaluate`); run it as the singleton
``evaluate alerts`` job. Sets ``tunewatch_alerts_firing{alert,experiment}`` after each run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from service.alerts import outbox, payloads
from service.alerts.clock import Clock
from service.config import AlertRule, AlertsConfig
from service.store.db import Database
from service.store.models import AlertState, AlertStateRow
from service.telemetry.metrics import ALERTS_FIRING

__all__ = [
    "AlertInstance", "Evaluation", "EvaluationRun", "StateMachine", "Transition", "alert_key", "list_alerts",
]

_T = AlertStateRow


def alert_key(alert: str, experiment: str, arm: str | None) -> str:
    """The ``alert_states`` primary key and the deliveries' ``alert_key``: ``alert|experiment|arm``."""
    return f"{alert}|{experiment}|{arm or ''}"


class ResultLike(Protocol):
    """What :class:`service.drift.detectors.DetectorResult` offers (alerts must not import drift)."""

    @property
    def detector(self) -> str: ...
    @property
    def active(self) -> bool: ...
    @property
    def value(self) -> float: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def evidence(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One detector's current verdict for one experiment (and arm, when the detector is per arm)."""

    alert: str
    experiment: str
    arm: str | None
    active: bool
    value: float | None = None
    threshold: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return alert_key(self.alert, self.experiment, self.arm)

    @classmethod
    def from_result(cls, result: ResultLike, experiment: str, arm: str | None) -> Evaluation:
        return cls(alert=str(result.detector), experiment=experiment, arm=arm, active=result.active,
                   value=result.value, threshold=result.threshold, evidence=dict(result.evidence))


@dataclass(frozen=True, slots=True)
class AlertInstance:
    """One row of ``alert_states``, decoded. ``since_at``: when the current state was entered."""

    key: str
    alert: str
    experiment: str
    arm: str | None
    state: str
    since_at: datetime
    last_notified_at: datetime | None
    value: float | None
    threshold: float | None = None
    severity: str | None = None
    active_since: datetime | None = None
    inactive_since: datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the admin API."""
        return {
            "key": self.key, "alert": self.alert, "experiment": self.experiment, "arm": self.arm,
            "state": self.state, "since_at": payloads.format_time(self.since_at),
            "last_notified_at": payloads.format_time(self.last_notified_at),
            "value": _finite(self.value), "threshold": _finite(self.threshold), "severity": self.severity,
            "active_since": payloads.format_time(self.active_since),
            "inactive_since": payloads.format_time(self.inactive_since), "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of one instance; ``to_state`` ``None`` means a pending instance was forgotten."""

    key: str
    from_state: str | None
    to_state: str | None
    notified: bool
    renotify: bool = False


@dataclass(frozen=True, slots=True)
class EvaluationRun:
    """What one evaluation did: transitions (re-notifies included) and deliveries enqueued."""

    transitions: list[Transition]
    deliveries: int
    firing: int


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _decode(row: Any) -> AlertInstance:
    extra: dict[str, Any] = orjson.loads(row.payload) if row.payload else {}
    evidence = extra.get("evidence")
    return AlertInstance(
        key=row.key, alert=row.alert, experiment=row.experiment, arm=row.arm, state=row.state,
        since_at=row.since_at, last_notified_at=row.last_notified_at, value=row.value,
        threshold=extra.get("threshold"), severity=extra.get("severity"),
        active_since=_time(extra.get("active_since")), inactive_since=_time(extra.get("inactive_since")),
        evidence=evidence if isinstance(evidence, dict) else {},
    )


def _encode(inst: AlertInstance) -> dict[str, Any]:
    extra = {
        "threshold": _finite(inst.threshold), "severity": inst.severity,
        "active_since": inst.active_since.isoformat() if inst.active_since else None,
        "inactive_since": inst.inactive_since.isoformat() if inst.inactive_since else None,
        "evidence": inst.evidence,
    }
    return {
        "alert": inst.alert, "experiment": inst.experiment, "arm": inst.arm, "state": inst.state,
        "since_at": inst.since_at, "last_notified_at": inst.last_notified_at, "value": _finite(inst.value),
        # orjson writes NaN as null: evidence may hold NaN from a detector with no data
        "payload": orjson.dumps(extra, option=orjson.OPT_NON_STR_KEYS).decode(),
    }


def list_alerts(db: Database, *, state: str | None = None) -> list[AlertInstance]:
    """Current alert instances (blocking), firing first then by key."""
    query = select(_T)
    if state is not None:
        query = query.where(_T.state == state)
    with db.begin() as conn:
        found = [_decode(r) for r in conn.execute(query)]
    order = {AlertState.FIRING.value: 0, AlertState.PENDING.value: 1, AlertState.RESOLVED.value: 2}
    return sorted(found, key=lambda a: (order.get(a.state, 3), a.key))


class StateMachine:
    """Evaluates alert instances against rules; state in the database, time from ``clock``."""

    def __init__(self, db: Database, config: AlertsConfig, clock: Clock) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._gauge_labels: set[tuple[str, str]] = set()

    def evaluate(self, evaluations: Iterable[Evaluation]) -> EvaluationRun:
        """Apply the complete current set of evaluations; returns what changed. Blocking."""
        current = {e.key: e for e in evaluations}
        now = self._clock.now()
        transitions: list[Transition] = []
        deliveries = 0
        query = select(_T)
        if self._db.is_postgres:
            query = query.with_for_update()  # the job is a singleton; this guards a manual run too
        with self._db.begin() as conn:
            stored = {r.key: _decode(r) for r in conn.execute(query)}
            for key in sorted(stored.keys() | current.keys()):
                step = self._step(conn, now, stored.get(key), current.get(key))
                if step is not None:
                    transitions.append(step[0])
                    deliveries += step[1]
            final = [_decode(r) for r in conn.execute(select(_T))]
        firing = self._publish(final)
        return EvaluationRun(transitions=transitions, deliveries=deliveries, firing=firing)

    def _step(self, conn: Connection, now: datetime, inst: AlertInstance | None,
              ev: Evaluation | None) -> tuple[Transition, int] | None:
        alert = ev.alert if ev is not None else inst.alert  # type: ignore[union-attr]  # one of them is set
        rule = self._config.rule_for(alert)
        holding = ev is not None and ev.active and rule.enabled
        state = inst.state if inst is not None else None
        if ev is not None and holding and (inst is None or state == AlertState.RESOLVED.value):
            fresh = AlertInstance(
                key=ev.key, alert=ev.alert, experiment=ev.experiment, arm=ev.arm,
                state=AlertState.PENDING.value, since_at=now, last_notified_at=None, value=ev.value,
                threshold=ev.threshold, severity=rule.severity.value, active_since=now, evidence=ev.evidence,
            )
            if rule.for_s <= 0:
                fresh = replace(fresh, state=AlertState.FIRING.value)
            if inst is None:
                conn.execute(insert(_T).values(key=fresh.key, **_encode(fresh)))
            else:
                self._save(conn, fresh)
            if fresh.state == AlertState.FIRING.value:
                return Transition(fresh.key, state, fresh.state, True), self._notify(conn, now, fresh, rule)
            return Transition(fresh.key, state, fresh.state, False), 0
        if inst is None:
            return None
        if ev is not None:
            inst = replace(inst, value=ev.value, threshold=ev.threshold, evidence=ev.evidence)
        if state == AlertState.PENDING.value:
            return self._step_pending(conn, now, inst, holding, rule)
        if state == AlertState.FIRING.value:
            return self._step_firing(conn, now, inst, holding, rule)
        if now - inst.since_at >= timedelta(seconds=self._config.resolved_retention_s):
            conn.execute(delete(_T).where(_T.key == inst.key))
        return None

    def _step_pending(self, conn: Connection, now: datetime, inst: AlertInstance, holding: bool,
                      rule: AlertRule) -> tuple[Transition, int] | None:
        if not holding:
            # never fired, so nobody was told: forget it silently (as Prometheus drops pending alerts)
            conn.execute(delete(_T).where(_T.key == inst.key))
            return Transition(inst.key, inst.state, None, False), 0
        if now - inst.since_at >= timedelta(seconds=rule.for_s):
            fired = replace(inst, state=AlertState.FIRING.value, since_at=now, severity=rule.severity.value)
            self._save(conn, fired)
            return Transition(inst.key, inst.state, fired.state, True), self._notify(conn, now, fired, rule)
        self._save(conn, inst)
        return None

    def _step_firing(self, conn: Connection, now: datetime, inst: AlertInstance, holding: bool,
                     rule: AlertRule) -> tuple[Transition, int] | None:
        if holding:
            inst = replace(inst, inactive_since=None)
        else:
            inst = replace(inst, inactive_since=inst.inactive_since or now)
            assert inst.inactive_since is not None  # set on the line above
            if now - inst.inactive_since >= timedelta(seconds=rule.keep_firing_for_s):
                done = replace(inst, state=AlertState.RESOLVED.value, since_at=now)
                self._save(conn, done)
                return Transition(inst.key, inst.state, done.state, True), self._notify(conn, now, done, rule)
        due = inst.last_notified_at is None or (
            rule.renotify_interval_s > 0
            and now - inst.last_notified_at >= timedelta(seconds=rule.renotify_interval_s)
        )
        if due:
            self._save(conn, inst)
            count = self._notify(conn, now, inst, rule)
            return Transition(inst.key, inst.state, inst.state, True, renotify=True), count
        self._save(conn, inst)
        return None

    def _save(self, conn: Connection, inst: AlertInstance) -> None:
        conn.execute(update(_T).where(_T.key == inst.key).values(**_encode(inst)))

    def _notify(self, conn: Connection, now: datetime, inst: AlertInstance, rule: AlertRule) -> int:
        resolved = inst.state == AlertState.RESOLVED.value
        event = payloads.AlertEvent(
            status="resolved" if resolved else "firing", dedup_key=inst.key, alert=inst.alert,
            experiment=inst.experiment, arm=inst.arm, severity=inst.severity or rule.severity.value,
            value=inst.value, threshold=inst.threshold, starts_at=inst.active_since,
            ends_at=now if resolved else None, evidence=inst.evidence,
        )
        body = payloads.generic(event, self._config.public_url, self._config.dashboard_url)
        conn.execute(update(_T).where(_T.key == inst.key).values(last_notified_at=now))
        return outbox.enqueue_for_receivers(conn, self._config.receivers, alert_key=inst.key,
                                            payload=_json_safe(body), now=now)

    def refresh_gauge(self) -> int:
        """Set ``tunewatch_alerts_firing`` from the stored states without evaluating; returns the firing
        count. For replicas that do not hold the singleton lock, so none keeps a stale value. Blocking."""
        return self._publish(list_alerts(self._db))

    def _publish(self, instances: Iterable[AlertInstance]) -> int:
        counts: dict[tuple[str, str], int] = {}
        for inst in instances:
            labels = (inst.alert, inst.experiment)
            counts[labels] = counts.get(labels, 0) + (inst.state == AlertState.FIRING.value)
        # pairs seen before whose rows are gone go back to 0 rather than keep a stale value
        for labels in self._gauge_labels | counts.keys():
            ALERTS_FIRING.labels(*labels).set(counts.get(labels, 0))
        self._gauge_labels |= counts.keys()
        return sum(counts.values())


def _json_safe(body: Mapping[str, Any]) -> dict[str, Any]:
    # evidence may hold NaN/inf; orjson turns them into null, so what is stored is valid JSON
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(dict(body), option=orjson.OPT_NON_STR_KEYS))
    return loaded
