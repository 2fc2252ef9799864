"""The comparison statistics, checked by simulation with fixed seeds (bench/stats_simulation.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from service.quality.compare import (
    COST,
    LATENCY_P95,
    MIN_SAMPLES,
    TTFT_P95,
    ArmData,
    MetricKind,
    compare_arms,
    fixed_horizon_sample_size,
    mean_confidence_sequence,
    quantile_confidence_sequence,
    required_sample_size,
)

VALUES = np.arange(1.0, 6.0)
# a judge's 1-5 scores: the base arm, and the same shifted up by exactly 0.30 points
BASE = np.array([0.05, 0.10, 0.25, 0.35, 0.25])
PLUS_03 = np.array([0.03, 0.07, 0.18, 0.36, 0.36])
EVALUATORS = ("relevance", "coherence", "fluency", "groundedness", "tone")


def _sd(p: np.ndarray) -> float:
    return float(math.sqrt(p @ VALUES**2 - (p @ VALUES) ** 2))


def test_the_effect_profile_is_exactly_three_tenths() -> None:
    assert float(PLUS_03 @ VALUES - BASE @ VALUES) == pytest.approx(0.30)


def test_aa_with_twenty_looks_declares_a_difference_in_at_most_5_percent_of_runs() -> None:
    rng = np.random.default_rng(20260101)
    runs, looks, step = 200, 20, 30
    false_positives = 0
    for _ in range(runs):
        n_max = looks * step
        a = {e: rng.choice(VALUES, n_max, p=BASE) for e in EVALUATORS}
        b = {e: rng.choice(VALUES, n_max, p=BASE) for e in EVALUATORS}
        for look in range(1, looks + 1):
            n = look * step
            cmp = compare_arms(
                ArmData("base", {e: v[:n] for e, v in a.items()}),
                ArmData("fine_tuned", {e: v[:n] for e, v in b.items()}),
            )
            if any(m.significant for m in cmp.metrics.values()):
                false_positives += 1
                break
    assert false_positives / runs <= 0.05


def test_a_point_three_effect_is_detected_with_80_percent_power_at_the_required_n() -> None:
    k = len(EVALUATORS)
    n = required_sample_size(0.3, max(_sd(BASE), _sd(PLUS_03)), alpha=0.05, power=0.8, k_metrics=k)
    assert 200 < n < 2000
    rng = np.random.default_rng(7)
    runs, detected = 800, 0
    for _ in range(runs):
        control = {e: rng.choice(VALUES, n, p=BASE) for e in EVALUATORS}
        treatment = {e: rng.choice(VALUES, n, p=BASE) for e in EVALUATORS}
        treatment["relevance"] = rng.choice(VALUES, n, p=PLUS_03)
        cmp = compare_arms(ArmData("base", control), ArmData("fine_tuned", treatment))
        assert cmp.k_metrics == k
        detected += cmp.metrics["relevance"].better is True
    assert detected / runs >= 0.8


def test_required_sample_size_pays_for_peeking_and_for_more_metrics() -> None:
    one = required_sample_size(0.3, 1.1, k_metrics=1)
    nine = required_sample_size(0.3, 1.1, k_metrics=9)
    assert nine > one > fixed_horizon_sample_size(0.3, 1.1, k_metrics=1)
    assert 1.3 < nine / fixed_horizon_sample_size(0.3, 1.1, k_metrics=9) < 2.0
    assert required_sample_size(0.15, 1.1, k_metrics=9) > 3 * nine
    assert required_sample_size(5.0, 0.1) == MIN_SAMPLES
    with pytest.raises(ValueError):
        required_sample_size(0.0, 1.0)


def test_the_quantile_sequence_covers_the_true_p95_at_every_look() -> None:
    rng = np.random.default_rng(3)
    sigma, runs, misses = 0.5, 200, 0
    true_p95 = math.exp(1.6448536269514722 * sigma)
    for _ in range(runs):
        x = rng.lognormal(0.0, sigma, 4000)
        for n in range(200, 4001, 200):
            _, (low, high) = quantile_confidence_sequence(x[:n], alpha=0.05)
            if not low <= true_p95 <= high:
                misses += 1
                break
    assert misses / runs <= 0.05


def test_the_mean_sequence_is_wider_than_a_fixed_n_interval_but_not_absurdly() -> None:
    x = np.random.default_rng(1).normal(0.0, 1.0, 500)
    mean, (low, high), sd = mean_confidence_sequence(x, alpha=0.05, planned_n=500)
    fixed = 1.959964 * sd / math.sqrt(500)
    assert low < mean < high
    assert 1.3 * fixed < (high - low) / 2 < 1.8 * fixed


def test_latency_and_cost_read_lower_as_better() -> None:
    rng = np.random.default_rng(11)
    # the study guide's example: p95 2.8 s on the base, 1.2 s on the fine-tune (-57 %)
    z95 = 1.6448536269514722
    base = ArmData("base", latency_s=2.8 * np.exp(0.4 * (rng.standard_normal(3000) - z95)))
    fine = ArmData("fine_tuned", latency_s=1.2 * np.exp(0.4 * (rng.standard_normal(3000) - z95)))
    m = compare_arms(base, fine).metrics[LATENCY_P95]
    assert m.kind is MetricKind.P95 and not m.higher_is_better
    assert m.improvement_pct == pytest.approx(-57.1, abs=4.0)
    assert m.improvement_ci[0] < -57.1 < m.improvement_ci[1] < 0
    assert m.diff_ci[1] < 0 and m.significant and m.better is True
    cost = compare_arms(
        ArmData("base", cost_usd=rng.gamma(4.0, 0.002, 2000)),
        ArmData("fine_tuned", cost_usd=rng.gamma(4.0, 0.0021, 2000)),
    ).metrics[COST]
    assert cost.improvement_pct > 0
    # a 5 % dearer fine-tune: either not significant, or significant and worse, never "better"
    assert cost.better in (None, False)


def test_the_relative_interval_excludes_zero_exactly_when_the_difference_does() -> None:
    rng = np.random.default_rng(5)
    for shift in np.linspace(-0.4, 0.4, 41):
        c = rng.normal(3.5, 1.0, 400)
        t = rng.normal(3.5 + shift, 1.0, 400)
        m = compare_arms(ArmData("a", {"relevance": c}), ArmData("b", {"relevance": t})).metrics["relevance"]
        diff_excludes = m.diff_ci[0] > 0 or m.diff_ci[1] < 0
        ratio_excludes = m.improvement_ci[0] > 0 or m.improvement_ci[1] < 0
        assert diff_excludes == ratio_excludes == m.significant
        assert m.improvement_ci[0] <= m.improvement_pct <= m.improvement_ci[1]
        assert (m.p_value is not None) and ((m.p_value <= 0.05) == m.significant)


def test_small_and_missing_data_are_never_significant_and_serialise_to_json() -> None:
    control = ArmData("base", {"relevance": [1, 1, 1, 2], "tone": [3]}, latency_s=[1.0, 2.0, 3.0])
    treatment = ArmData("fine_tuned", {"relevance": [5, 5, 5, 5]}, latency_s=[0.1, 0.2], ttft_s=[0.1] * 50)
    cmp = compare_arms(control, treatment)
    assert set(cmp.metrics) == {"relevance", LATENCY_P95}
    assert set(cmp.insufficient) == {"tone", TTFT_P95}
    assert cmp.k_metrics == 4
    rel = cmp.metrics["relevance"]
    assert not rel.enough_data and not rel.significant and rel.better is None
    assert math.isinf(cmp.metrics[LATENCY_P95].control_ci[1])  # 3 values cannot bound a p95
    doc = json.loads(json.dumps(cmp.to_dict(), allow_nan=False))
    assert doc["metrics"][LATENCY_P95]["control_ci"][1] is None
    assert doc["metrics"]["relevance"]["kind"] == "score"


def test_bad_arguments_raise() -> None:
    arm = ArmData("a", {"relevance": [1, 2, 3]})
    with pytest.raises(ValueError):
        compare_arms(arm, arm, alpha=0.0)
    with pytest.raises(ValueError):
        mean_confidence_sequence([1.0])
    with pytest.raises(ValueError):
        quantile_confidence_sequence([])


def test_the_aa_check_has_teeth_a_fixed_n_test_peeked_twenty_times_fails_it() -> None:
    rng = np.random.default_rng(20260101)
    runs, looks, step, false_positives = 200, 20, 30, 0
    for _ in range(runs):
        a = rng.choice(VALUES, (len(EVALUATORS), looks * step), p=BASE)
        b = rng.choice(VALUES, (len(EVALUATORS), looks * step), p=BASE)
        for n in range(step, looks * step + 1, step):
            se = np.sqrt((a[:, :n].var(axis=1, ddof=1) + b[:, :n].var(axis=1, ddof=1)) / n)
            if np.any(np.abs(b[:, :n].mean(axis=1) - a[:, :n].mean(axis=1)) / se > 1.959964):
                false_positives += 1
                break
    assert false_positives / runs > 0.5  # what the anytime-valid intervals protect against


def test_constant_scores_do_not_break_the_intervals() -> None:
    same = compare_arms(ArmData("a", {"tone": [5.0] * 40}), ArmData("b", {"tone": [5.0] * 40})).metrics[
        "tone"
    ]
    assert same.diff == 0 and not same.significant and same.p_value == 1.0
    apart = compare_arms(ArmData("a", {"tone": [4.0] * 40}), ArmData("b", {"tone": [5.0] * 40})).metrics[
        "tone"
    ]
    assert apart.significant and apart.better is True
    assert apart.improvement_pct == pytest.approx(25.0)
