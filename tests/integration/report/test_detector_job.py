"""The detector job through the database: every detector fires on data built to trip it and stays
quiet on steady data; each reading writes a ``signals`` row and sets the gauges. Both dialects."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import numpy as np
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from service.drift.detectors import Detector
from service.drift.job import ALL_ARMS, Finding, run_detectors
from service.quality.report import build_report
from service.store.db import Database
from service.store.models import Signal
from tests.unit.quality.report_rows import NOW, Rows
from tests.unit.quality.test_report import experiments

_names = count(1)
PER_ARM = (
    Detector.OOD_SHARE_RISING,
    Detector.LOW_CONFIDENCE_SHARE_RISING,
    Detector.NEGATIVE_FEEDBACK_RISING,
    Detector.ERROR_RATE_SPIKE,
    Detector.LATENCY_CHANGE_POINT,
    Detector.QUALITY_BELOW_THRESHOLD,
)


def _traffic(rows: Rows, arm: str, start_h: float, end_h: float, n: int, rng: np.random.Generator, *,
             latency: float = 1.0, ood: float = 0.05, low: float = 0.05, errors: float = 0.01,
             down: float = 0.1, score: float | None = None) -> None:  # fmt: skip
    """``n`` requests of ``arm`` evenly between ``start_h`` and ``end_h`` hours before NOW."""
    span = (start_h - end_h) * 3600.0
    lat = rng.lognormal(np.log(latency), 0.3, n)
    for i in range(n):
        at = NOW - timedelta(hours=start_h) + timedelta(seconds=span * (i + 0.5) / n)
        rid = rows.request(
            arm, at, latency_s=float(lat[i]), status=500 if rng.random() < errors else 200,
            ood=bool(rng.random() < ood), logprob=-2.0 if rng.random() < low else -0.2,
        )  # fmt: skip
        if i % 2 == 0:
            rows.thumbs(rid, up=bool(rng.random() >= down))
        if score is not None and i % 2 == 0:
            rows.score(rid, {"relevance": float(np.clip(np.rint(rng.normal(score, 0.7)), 1, 5))})


def _steady(rows: Rows, rng: np.random.Generator) -> None:
    for arm in ("base", "fine_tuned"):
        _traffic(rows, arm, 7.0, 1.0, 600, rng, score=4.0)  # baseline: the 6 hours before the last one
        _traffic(rows, arm, 1.0, 0.0, 500, rng, score=4.0)  # the current hour


def _active(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.arm, f.result.detector) for f in findings if f.result.active}


def _gauge(name: str, exp: str, arm: str, detector: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"experiment": exp, "arm": arm, "detector": detector})


def test_every_detector_fires_on_a_drifting_fine_tune(migrated_db: Database) -> None:
    exp = f"drift{next(_names)}"
    rows, rng = Rows(experiment=exp), np.random.default_rng(11)
    for arm in ("base", "fine_tuned"):
        _traffic(rows, arm, 7.0, 1.0, 600, rng, score=4.0)
    _traffic(rows, "base", 1.0, 0.0, 440, rng, score=4.0)
    # the fine-tune's last hour: slower, off-domain, unsure, failing, disliked, low scores; and
    # 560 vs 440 requests where 50/50 is configured
    _traffic(rows, "fine_tuned", 1.0, 0.0, 560, rng, latency=2.0, ood=0.4, low=0.4, errors=0.2, down=0.6,
             score=2.0)  # fmt: skip
    rows.write(migrated_db)

    findings = run_detectors(migrated_db, [experiments(name=exp).experiments[0]], now=NOW)

    active = _active(findings)
    for detector in PER_ARM:
        assert ("fine_tuned", detector) in active, detector
        assert ("base", detector) not in active, detector
    assert ("fine_tuned", Detector.LATENCY_P95_ABOVE_CONTROL) in active
    assert (ALL_ARMS, Detector.SAMPLE_RATIO_MISMATCH) in active
    for detector in (*PER_ARM, Detector.LATENCY_P95_ABOVE_CONTROL):
        assert _gauge("tunewatch_signal_active", exp, "fine_tuned", detector) == 1.0, detector
    assert _gauge("tunewatch_signal_active", exp, ALL_ARMS, Detector.SAMPLE_RATIO_MISMATCH) == 1.0
    assert _gauge("tunewatch_signal_active", exp, "base", Detector.ERROR_RATE_SPIKE) == 0.0
    quality = _gauge("tunewatch_signal_value", exp, "fine_tuned", Detector.QUALITY_BELOW_THRESHOLD)
    assert quality is not None and quality < 2.5

    # one row per reading, with its evidence; the report shows the latest run
    with migrated_db.begin() as conn:
        stored = conn.execute(select(Signal).where(Signal.experiment == exp)).all()
    assert len(stored) == len(findings)
    srm = next(r for r in stored if r.detector == Detector.SAMPLE_RATIO_MISMATCH)
    assert srm.arm == ALL_ARMS and srm.active and srm.created_at == NOW
    assert orjson.loads(srm.evidence)["observed"]["fine_tuned"] == 560
    signals = build_report(migrated_db, experiments(name=exp), exp, now=NOW).to_dict()["signals"]
    assert {(s["arm"], s["detector"]) for s in signals if s["active"]} == {(a, str(d)) for a, d in active}


def test_steady_traffic_fires_nothing(migrated_db: Database) -> None:
    exp = f"steady{next(_names)}"
    rows = Rows(experiment=exp)
    _steady(rows, np.random.default_rng(5))
    rows.write(migrated_db)
    findings = run_detectors(migrated_db, experiments(name=exp), now=NOW)
    assert _active(findings) == set()
    assert {f.result.detector for f in findings} == {str(d) for d in Detector}
    for detector in PER_ARM:
        assert _gauge("tunewatch_signal_active", exp, "fine_tuned", detector) == 0.0
    assert _gauge("tunewatch_signal_active", exp, ALL_ARMS, Detector.SAMPLE_RATIO_MISMATCH) == 0.0


def test_thresholds_and_live_weights_come_from_the_caller(migrated_db: Database) -> None:
    exp = f"params{next(_names)}"
    rows = Rows(experiment=exp)
    _steady(rows, np.random.default_rng(6))
    rows.write(migrated_db)
    # scores around 4.0: below a 4.5 threshold; a 50/50 split against live 80/20 shares
    findings = run_detectors(
        migrated_db, experiments(name=exp), now=NOW, thresholds={exp: {"relevance": 4.5}},
        weights={exp: {"base": 0.8, "fine_tuned": 0.2}},
    )  # fmt: skip
    active = _active(findings)
    assert ("base", Detector.QUALITY_BELOW_THRESHOLD) in active
    assert (ALL_ARMS, Detector.SAMPLE_RATIO_MISMATCH) in active
    quality = [f for f in findings if f.result.detector == Detector.QUALITY_BELOW_THRESHOLD]
    assert {f.evaluator for f in quality} == {"relevance"} and all(f.result.threshold == 4.5 for f in quality)


def test_no_data_sets_gauges_but_writes_no_row(migrated_db: Database) -> None:
    exp = f"empty{next(_names)}"
    findings = run_detectors(migrated_db, experiments(name=exp), now=NOW)
    assert findings and not _active(findings)
    assert _gauge("tunewatch_signal_active", exp, "base", Detector.ERROR_RATE_SPIKE) == 0.0
    with migrated_db.begin() as conn:
        rows = conn.execute(select(Signal).where(Signal.experiment == exp)).all()
    # only the sample-ratio check has a value with no traffic (p = 1: nothing to contradict the weights)
    assert [r.detector for r in rows] == [Detector.SAMPLE_RATIO_MISMATCH]


@pytest.mark.parametrize("stage", ["shadow", "promoted"])
def test_the_stage_decides_the_expected_split(migrated_db: Database, stage: str) -> None:
    exp = f"stage{next(_names)}"
    rows = Rows(experiment=exp)
    _steady(rows, np.random.default_rng(8))
    rows.write(migrated_db)
    findings = run_detectors(migrated_db, experiments(name=exp, stage=stage), now=NOW)
    # both arms served while the stage sends everyone to one: broken routing
    assert (ALL_ARMS, Detector.SAMPLE_RATIO_MISMATCH) in _active(findings)
