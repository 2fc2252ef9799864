"""The detector job: load each experiment's recent windows from the store, run every drift detector,
write one ``signals`` row per reading and set the ``tunewatch_signal_*`` gauges the alert rules use.

Windows (seconds before ``now``, all configurable in :class:`DetectorWindows`):

- *current*: ``[now - window_s, now)``; *baseline*: the ``baseline_s`` right before it. Shares
  (out-of-domain, low-confidence, negative feedback, errors) compare current with baseline; the
  latency change point reads the baseline as the arm's history and the current window as recent.
- *quality*: ``[now - quality_window_s, now)``, longer because judge scores are sampled.
- the sample-ratio check and the p95 comparison use the current window.

Detectors, per experiment (``arm`` label ``"all"`` for experiment-level ones):
quality below threshold (per evaluator and arm; the gauge holds the lowest mean over the
evaluators and is active when any evaluator fires), out-of-domain share rising, low-confidence
share rising, negative-feedback rate rising, error-rate spike and latency change point (per arm),
the treatment's p95 above the control's (``arm`` = the treatment), sample-ratio mismatch (``all``).

A reading with no value (too little data) sets the gauges (value NaN, active 0) but writes no row:
``signals.value`` is not nullable and a row should be a measurement. Blocking (SQL, numpy): the
lead's scheduler runs it in a worker thread, once across replicas (advisory lock in ``service.jobs``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import insert

from service.config import ExperimentConfig, ExperimentsFile
from service.drift.detectors import (
    Detector,
    DetectorResult,
    latency_change_point,
    latency_p95_above_control,
    quality_below_threshold,
    sample_ratio_mismatch,
    share_rising,
)
from service.quality.data import ArmObservations, load_observations
from service.quality.report import config_shares
from service.store.db import Database
from service.store.models import Signal
from service.telemetry.metrics import SIGNAL_ACTIVE, SIGNAL_VALUE

__all__ = ["ALL_ARMS", "DEFAULT_QUALITY_THRESHOLD", "DetectorWindows", "Finding", "run_detectors"]

log = logging.getLogger(__name__)

ALL_ARMS = "all"  # the arm label of experiment-level detectors (sample-ratio mismatch)
DEFAULT_QUALITY_THRESHOLD = 3.0  # on the 1-5 judge scale, when the config names none


@dataclass(frozen=True, slots=True)
class DetectorWindows:
    """Window lengths (seconds) and the detectors' significance level."""

    window_s: float = 3600.0
    baseline_s: float = 6 * 3600.0
    quality_window_s: float = 2 * 3600.0
    alpha: float = 0.01


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector's reading for an experiment and arm (``evaluator`` for quality readings)."""

    experiment: str
    arm: str
    result: DetectorResult
    evaluator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "arm": self.arm, "evaluator": self.evaluator,
                **self.result.to_dict()}  # fmt: skip


def _experiments(experiments: ExperimentsFile | Sequence[ExperimentConfig]) -> Sequence[ExperimentConfig]:
    return experiments.experiments if isinstance(experiments, ExperimentsFile) else experiments


def _share(detector: Detector, now: ArmObservations, before: ArmObservations, which: str,
           alpha: float) -> DetectorResult:  # fmt: skip
    if which == "errors":
        hits, n, b_hits, b_n = now.errors, now.requests, before.errors, before.requests
    elif which == "negative":
        hits, n = int(now.feedback_negative.sum()), int(now.feedback_negative.size)
        b_hits, b_n = int(before.feedback_negative.sum()), int(before.feedback_negative.size)
    else:
        flags = now.ood if which == "ood" else now.low_confidence
        b_flags = before.ood if which == "ood" else before.low_confidence
        (hits, n), (b_hits, b_n) = now.rate(flags), before.rate(b_flags)
    return share_rising(detector, hits, n, b_hits, b_n, alpha=alpha)


def _arm_findings(
    exp: str, arm: str, obs: ArmObservations, bounds: dict[str, float], thresholds: Mapping[str, float],
    w: DetectorWindows,
) -> list[Finding]:  # fmt: skip
    current = obs.window(bounds["current"], None)
    baseline = obs.window(bounds["baseline"], bounds["current"])
    quality = obs.window(bounds["quality"], None)
    out = [
        Finding(exp, arm, quality_below_threshold(
            scores, thresholds.get(ev, DEFAULT_QUALITY_THRESHOLD), alpha=w.alpha), ev)
        for ev, scores in quality.scores.items()
    ]  # fmt: skip
    for detector, which in (
        (Detector.OOD_SHARE_RISING, "ood"),
        (Detector.LOW_CONFIDENCE_SHARE_RISING, "low"),
        (Detector.NEGATIVE_FEEDBACK_RISING, "negative"),
        (Detector.ERROR_RATE_SPIKE, "errors"),
    ):
        out.append(Finding(exp, arm, _share(detector, current, baseline, which, w.alpha)))
    out.append(Finding(exp, arm, latency_change_point(baseline.served_latency_s, current.served_latency_s)))
    return out


def detect_experiment(
    db: Database, exp: ExperimentConfig, now: datetime, *, weights: Mapping[str, float] | None = None,
    thresholds: Mapping[str, float] | None = None, windows: DetectorWindows = DetectorWindows(),
) -> list[Finding]:  # fmt: skip
    """Every detector's reading for one experiment (no writes). Blocking."""
    t = now.timestamp()
    bounds = {"current": t - windows.window_s, "baseline": t - windows.window_s - windows.baseline_s,
              "quality": t - windows.quality_window_s}  # fmt: skip
    since = datetime.fromtimestamp(min(bounds.values()), UTC)
    obs = load_observations(db, exp.name, since=since, until=now)
    arms = [a.name for a in exp.arms] + [a for a in obs if a not in {x.name for x in exp.arms}]
    obs = {arm: obs.get(arm) or ArmObservations(arm=arm) for arm in arms}
    findings: list[Finding] = []
    for arm in arms:
        findings += _arm_findings(exp.name, arm, obs[arm], bounds, thresholds or {}, windows)
    control, treatment = exp.control_arm, exp.treatment_arm
    current = {arm: o.window(bounds["current"], None) for arm, o in obs.items()}
    if control != treatment:
        p95 = latency_p95_above_control(
            current[control].served_latency_s, current[treatment].served_latency_s, alpha=windows.alpha
        )
        findings.append(Finding(exp.name, treatment, p95))
    shares = dict(weights) if weights is not None else config_shares(exp, exp.stage)
    srm = sample_ratio_mismatch({arm: o.routed for arm, o in current.items()}, shares)
    findings.append(Finding(exp.name, ALL_ARMS, srm))
    return findings


def _publish(findings: Sequence[Finding]) -> None:
    """Set the gauges; quality readings collapse over evaluators (the label set has no evaluator)."""
    groups: dict[tuple[str, str, str], list[DetectorResult]] = {}
    for f in findings:
        groups.setdefault((f.experiment, f.arm, f.result.detector), []).append(f.result)
    for (exp, arm, detector), results in groups.items():
        values = [r.value for r in results if math.isfinite(r.value)]
        value = math.nan
        if values:  # the worst (lowest) mean among the evaluators, else the one reading
            value = min(values) if detector == Detector.QUALITY_BELOW_THRESHOLD else values[0]
        SIGNAL_VALUE.labels(exp, arm, detector).set(value)
        SIGNAL_ACTIVE.labels(exp, arm, detector).set(1.0 if any(r.active for r in results) else 0.0)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _write(db: Database, findings: Sequence[Finding], now: datetime) -> int:
    rows = [
        {"created_at": now, "experiment": f.experiment, "arm": f.arm, "detector": f.result.detector,
         "value": f.result.value, "threshold": _finite(f.result.threshold), "active": f.result.active,
         "evidence": orjson.dumps({**f.result.evidence, "evaluator": f.evaluator}).decode()}
        for f in findings
        if math.isfinite(f.result.value)
    ]  # fmt: skip
    if rows:
        with db.begin() as conn:
            conn.execute(insert(Signal), rows)
    return len(rows)


def run_detectors(
    db: Database,
    experiments: ExperimentsFile | Sequence[ExperimentConfig],
    *,
    now: datetime | None = None,
    clock: Callable[[], datetime] | None = None,
    weights: Mapping[str, Mapping[str, float]] | None = None,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    windows: DetectorWindows = DetectorWindows(),
) -> list[Finding]:
    """Run every detector on every experiment, write the signal rows and set the gauges.

    ``now`` (else ``clock()``, else the wall clock) is aware UTC. ``weights`` maps experiment ->
    arm -> live routing share (else the config's weights at its stage); ``thresholds`` maps
    experiment -> evaluator -> quality threshold on 1-5 (else :data:`DEFAULT_QUALITY_THRESHOLD`).
    Returns every reading. Blocking; raises what SQLAlchemy raises.
    """
    now = now or (clock() if clock is not None else datetime.now(UTC))
    findings: list[Finding] = []
    for exp in _experiments(experiments):
        findings += detect_experiment(
            db, exp, now, weights=(weights or {}).get(exp.name), thresholds=(thresholds or {}).get(exp.name),
            windows=windows,
        )  # fmt: skip
    written = _write(db, findings, now)
    _publish(findings)
    active = sorted({f"{f.experiment}/{f.arm}/{f.result.detector}" for f in findings if f.result.active})
    log.info("detectors.run", extra={"readings": len(findings), "rows": written, "active": active})
    return findings
