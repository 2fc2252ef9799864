"""The scheduled jobs of the service, each given its dependencies: what ``app.py`` schedules.

| job | every | runs on |
|---|---|---|
| ``rollout_sync``: apply the stage/weights another replica stored | 5 s | every replica |
| ``scorer``: LLM-as-judge scoring of claimed samples | ``scorer_interval_s`` | every replica (rows claimed) |
| ``ood``: out-of-domain scores of recorded queries | ``ood_interval_s`` | one replica |
| ``detectors``: drift, quality, latency, feedback, SRM signals | ``detectors_interval_s`` | one replica |
| ``alerts``: the state machine over the signals | ``alerts_interval_s`` (30 s) | one replica |
| ``webhooks``: due deliveries of the outbox | ``webhooks_interval_s`` (10 s) | one replica |
| ``alerts_gauge``: ``tunewatch_alerts_firing`` from the stored states | 30 s | every replica |
| ``retention``: purge old text and rows | 1 h | one replica |
"""

from __future__ import annotations

from collections.abc import Mapping

from service.alerts import (
    StateMachine,
    SystemClock,
    build_http_client,
    deliver_due,
    latest_evaluations,
    resolve_receivers,
)
from service.config import EvaluatorName, ExperimentsFile, Settings
from service.drift.job import run_detectors
from service.drift.scoring import OodScorer
from service.jobs import Job
from service.quality.scorer import Scorer
from service.rollout.state import RouteControl, sync
from service.store.db import Database
from service.store.retention import purge

__all__ = ["build_jobs"]


def build_jobs(
    settings: Settings, experiments: ExperimentsFile, database: Database, routing: RouteControl
) -> list[Job]:
    """Every job this service runs on a schedule (reads receiver secrets: ``ConfigError`` if missing)."""
    names = [e.name for e in experiments.experiments]
    ood = OodScorer(database, names)
    jobs = [
        Job("rollout_sync", lambda: sync(database, routing), interval_s=5.0),
        Job("ood", ood.run_once, interval_s=settings.ood_interval_s, singleton=True),
        Job("detectors", lambda: run_detectors(database, experiments, weights=_shares(routing, names),
                                               thresholds=_thresholds(experiments)),
            interval_s=settings.detectors_interval_s, singleton=True),
        Job("retention", lambda: purge(database, settings.sample_retention_days, settings.request_retention_days),
            interval_s=3600.0, singleton=True),
        *_alert_jobs(settings, experiments, database),
    ]
    quality = {e.name: e.quality for e in experiments.experiments if e.quality is not None}
    if quality:
        scorer = Scorer(database, quality)
        jobs.append(Job("scorer", scorer.run_once, interval_s=settings.scorer_interval_s, close=scorer.close))
    return jobs


def _alert_jobs(settings: Settings, experiments: ExperimentsFile, database: Database) -> list[Job]:
    cfg = experiments.alerts
    clock = SystemClock()
    machine = StateMachine(database, cfg, clock)
    receivers = resolve_receivers(cfg)
    http = build_http_client()
    return [
        Job("alerts", lambda: machine.evaluate(latest_evaluations(database, clock.now(), cfg.signal_max_age_s)),
            interval_s=settings.alerts_interval_s, singleton=True),
        Job("webhooks", lambda: deliver_due(database, receivers, http, clock, policy=cfg.delivery),
            interval_s=settings.webhooks_interval_s, singleton=True, close=http.close),
        Job("alerts_gauge", machine.refresh_gauge, interval_s=30.0),
    ]


def _shares(routing: RouteControl, names: list[str]) -> dict[str, Mapping[str, float]]:
    """The live effective shares, which the sample-ratio check compares the split with."""
    out = {}
    for name in names:
        state = routing.state(name)
        if state is not None:
            out[name] = state[2]
    return out


def _thresholds(experiments: ExperimentsFile) -> dict[str, dict[str, float]]:
    return {e.name: {ev.value: e.quality.threshold(ev) for ev in EvaluatorName}
            for e in experiments.experiments if e.quality is not None}
