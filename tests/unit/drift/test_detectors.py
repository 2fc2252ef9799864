"""Each detector fires on data built to trip it and stays quiet on data that must not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.drift.detectors import (
    SRM_P_THRESHOLD,
    Detector,
    DetectorResult,
    latency_change_point,
    latency_p95_above_control,
    quality_below_threshold,
    sample_ratio_mismatch,
    share_rising,
)

VALUES = np.arange(1.0, 6.0)


def _is_json(result: DetectorResult) -> None:
    json.dumps(result.to_dict(), allow_nan=False)
    json.dumps(result.evidence, allow_nan=False)


# quality below threshold


def test_quality_fires_when_the_mean_is_clearly_below_the_threshold() -> None:
    rng = np.random.default_rng(1)
    low = rng.choice(VALUES, 200, p=[0.10, 0.20, 0.35, 0.25, 0.10])  # mean 3.0
    r = quality_below_threshold(low, threshold=3.5)
    assert r.active and r.detector == Detector.QUALITY_BELOW_THRESHOLD
    assert r.value == pytest.approx(low.mean()) and r.threshold == 3.5
    assert r.evidence["upper_bound"] < 3.5
    _is_json(r)


def test_quality_stays_quiet_above_the_threshold_and_on_a_noisy_dip() -> None:
    rng = np.random.default_rng(2)
    good = rng.choice(VALUES, 200, p=[0.02, 0.05, 0.13, 0.40, 0.40])  # mean 4.1
    assert not quality_below_threshold(good, threshold=3.5).active
    # a mean a hair under the threshold is not evidence: the upper bound is above it
    dip = np.array([3.0, 4.0] * 15 + [3.0])
    r = quality_below_threshold(dip, threshold=3.55)
    assert r.value < 3.55 and not r.active
    assert not quality_below_threshold([1.0] * 5, threshold=3.5).active  # too few samples
    # at exactly the threshold it fires in about alpha (1 %) of windows
    p_at = [0.05, 0.10, 0.25, 0.35, 0.25]  # mean 3.65
    fired = sum(quality_below_threshold(rng.choice(VALUES, 100, p=p_at), 3.65).active for _ in range(300))
    assert fired / 300 <= 0.03


# shares rising: out-of-domain, low-confidence, negative feedback, errors


def test_share_rising_fires_on_a_real_rise() -> None:
    r = share_rising(Detector.OOD_SHARE_RISING, 120, 1000, 50, 1000)
    assert r.active and r.value == pytest.approx(0.12) and r.threshold == pytest.approx(0.05)
    assert r.evidence["test"].startswith("two-proportion z")
    assert r.evidence["p_value"] < 0.01
    _is_json(r)


def test_share_rising_is_quiet_on_equal_or_falling_shares_and_small_windows() -> None:
    assert not share_rising(Detector.NEGATIVE_FEEDBACK_RISING, 52, 1000, 50, 1000).active
    assert not share_rising(Detector.LOW_CONFIDENCE_SHARE_RISING, 20, 1000, 50, 1000).active
    assert not share_rising(Detector.OOD_SHARE_RISING, 9, 10, 0, 10).active  # below min_samples
    # a significant but tiny rise is ignored when a minimum increase is asked for
    big = share_rising(Detector.OOD_SHARE_RISING, 10_600, 100_000, 10_000, 100_000, min_increase=0.01)
    assert big.evidence["p_value"] < 0.01 and not big.active


def test_share_rising_false_alarm_rate_on_stationary_data() -> None:
    rng = np.random.default_rng(3)
    fired = 0
    for _ in range(500):
        cur, base = rng.binomial(800, 0.08), rng.binomial(4000, 0.08)
        fired += share_rising(Detector.OOD_SHARE_RISING, int(cur), 800, int(base), 4000).active
    assert fired / 500 <= 0.025  # alpha is 1 %


def test_error_spike_uses_an_exact_test_for_rare_events() -> None:
    r = share_rising(Detector.ERROR_RATE_SPIKE, 9, 500, 0, 2000)
    assert r.active and r.evidence["test"].startswith("fisher")
    quiet = share_rising(Detector.ERROR_RATE_SPIKE, 1, 500, 2, 2000)
    assert not quiet.active and quiet.evidence["test"].startswith("fisher")
    with pytest.raises(ValueError):
        share_rising(Detector.ERROR_RATE_SPIKE, 5, 4, 0, 10)


# latency: p95 against the control, and change-point on an arm's own series


def test_p95_above_control_fires_on_a_slower_treatment() -> None:
    rng = np.random.default_rng(4)
    control = rng.lognormal(0.0, 0.5, 2000)
    slower = 1.3 * rng.lognormal(0.0, 0.5, 2000)
    r = latency_p95_above_control(control, slower)
    assert r.active and r.threshold is not None and r.value > r.threshold
    assert r.evidence["ratio_lower_bound"] > 1.0
    _is_json(r)


def test_p95_above_control_is_quiet_on_equal_or_faster_treatment() -> None:
    fired = 0
    for seed in range(60):
        rng = np.random.default_rng(100 + seed)
        fired += latency_p95_above_control(rng.lognormal(0, 0.5, 1000), rng.lognormal(0, 0.5, 1000)).active
    assert fired <= 3  # one-sided alpha 1 %
    rng = np.random.default_rng(5)
    assert not latency_p95_above_control(
        rng.lognormal(0, 0.5, 1000), 0.5 * rng.lognormal(0, 0.5, 1000)
    ).active
    short = latency_p95_above_control([1.0] * 10, [9.0] * 10)
    assert not short.active and short.evidence["reason"] == "insufficient data"
    _is_json(short)


def test_the_closed_form_p95_bootstrap_matches_resampling() -> None:
    rng = np.random.default_rng(6)
    control, treatment = rng.lognormal(0, 0.5, 400), rng.lognormal(0.1, 0.5, 400)
    fast = latency_p95_above_control(control, treatment, alpha=0.05, draws=20_000, min_samples=10)
    k = int(np.ceil(0.95 * 400)) - 1
    boot_c = np.sort(rng.choice(control, (4000, 400)), axis=1)[:, k]
    boot_t = np.sort(rng.choice(treatment, (4000, 400)), axis=1)[:, k]
    brute = float(np.quantile(boot_t / boot_c, 0.05))
    assert fast.evidence["ratio_lower_bound"] == pytest.approx(brute, abs=0.02)


def test_change_point_is_quiet_on_stationary_lognormal_latency() -> None:
    alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(200 + seed)
        alarms += latency_change_point(rng.lognormal(0.3, 0.5, 500), rng.lognormal(0.3, 0.5, 2000)).active
    assert alarms <= 2


def test_change_point_fires_on_a_rise_and_locates_it() -> None:
    rng = np.random.default_rng(7)
    history = rng.lognormal(0.3, 0.5, 500)
    recent = np.concatenate([rng.lognormal(0.3, 0.5, 600), 1.6 * rng.lognormal(0.3, 0.5, 400)])
    r = latency_change_point(history, recent)
    assert r.active and r.threshold is not None and r.value > r.threshold
    assert 600 <= r.evidence["alarm_index"] < 700
    assert 550 <= r.evidence["change_index"] <= 620
    assert r.evidence["latency_ratio"] == pytest.approx(1.6, rel=0.15)
    _is_json(r)


def test_change_point_ignores_a_fall_and_short_history() -> None:
    rng = np.random.default_rng(8)
    history = rng.lognormal(0.3, 0.5, 500)
    assert not latency_change_point(history, 0.5 * rng.lognormal(0.3, 0.5, 1000)).active
    assert not latency_change_point(history[:50], 3 * rng.lognormal(0.3, 0.5, 1000)).active


# sample-ratio mismatch


def test_a_55_45_split_configured_as_50_50_trips_the_check() -> None:
    r = sample_ratio_mismatch({"base": 1100, "fine_tuned": 900}, {"base": 0.5, "fine_tuned": 0.5})
    assert r.active and r.value < SRM_P_THRESHOLD and r.threshold == SRM_P_THRESHOLD
    assert r.evidence["observed_share"] == {"base": 0.55, "fine_tuned": 0.45}
    assert "void" in r.evidence["reason"]
    _is_json(r)


def test_srm_detection_rate_at_2000_requests_and_no_false_alarm_at_50_50() -> None:
    rng = np.random.default_rng(9)
    weights = {"base": 0.5, "fine_tuned": 0.5}
    tripped = quiet = 0
    for _ in range(300):
        skewed = int(rng.binomial(2000, 0.55))
        tripped += sample_ratio_mismatch({"base": skewed, "fine_tuned": 2000 - skewed}, weights).active
        fair = int(rng.binomial(2000, 0.5))
        quiet += not sample_ratio_mismatch({"base": fair, "fine_tuned": 2000 - fair}, weights).active
    assert tripped / 300 >= 0.8  # about 88 % at n = 2,000; 99 % at 3,000 (bench)
    assert quiet / 300 >= 0.99


def test_srm_edge_cases() -> None:
    weights = {"base": 0.9, "fine_tuned": 0.1, "candidate": 0.0}
    assert not sample_ratio_mismatch({"base": 905, "fine_tuned": 95}, weights).active
    stray = sample_ratio_mismatch({"base": 900, "fine_tuned": 95, "candidate": 5}, weights)
    assert stray.active and "candidate" in stray.evidence["reason"]
    assert not sample_ratio_mismatch({"base": 30, "fine_tuned": 10}, {"base": 0.5, "fine_tuned": 0.5}).active
    with pytest.raises(ValueError):
        sample_ratio_mismatch({"base": 10}, {"base": 0.0})
