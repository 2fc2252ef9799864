"""The decision table: each rule produces its action, with reasons that carry the numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.drift.detectors import sample_ratio_mismatch
from service.quality.compare import ArmData, Comparison, compare_arms, required_sample_size
from service.quality.cost import ArmCost, project_costs
from service.quality.verdict import Action, decide, samples_needed

VALUES = np.arange(1.0, 6.0)
BASE = [0.05, 0.10, 0.25, 0.35, 0.25]  # mean 3.65
BETTER = [0.01, 0.03, 0.12, 0.39, 0.45]  # mean 4.24
WORSE = [0.10, 0.20, 0.30, 0.25, 0.15]  # mean 3.15
EVALUATORS = ("relevance", "coherence", "fluency", "groundedness", "tone")


def _scores(p: list[float], n: int, seed: int) -> np.ndarray:
    """Exactly n * p of each score, shuffled: the mean is known, not sampled."""
    counts = np.round(np.asarray(p) * n).astype(int)
    values = np.repeat(VALUES, counts)
    return np.random.default_rng(seed).permutation(values)


def _compare(control: dict[str, list[float]], treatment: dict[str, list[float]], n: int) -> Comparison:
    c = ArmData("base", {e: _scores(control.get(e, BASE), n, i) for i, e in enumerate(EVALUATORS)})
    t = ArmData(
        "fine_tuned", {e: _scores(treatment.get(e, BASE), n, 50 + i) for i, e in enumerate(EVALUATORS)}
    )
    return compare_arms(c, t)


def test_better_deploys_with_the_numbers_and_the_payback() -> None:
    cmp = _compare({}, {"relevance": BETTER, "tone": BETTER}, 1000)
    cost = project_costs(
        ArmCost("base", 1000, 8.0),
        ArmCost("fine_tuned", 1000, 3.0),
        requests_per_day=50_000 / 30,
        job_cost_usd=25.0,
    )
    v = decide(cmp, cost=cost)
    assert v.action is Action.DEPLOY and v.needed_samples is None
    text = " ".join(v.reasons)
    assert "relevance: fine_tuned 4.24 vs base 3.65 (+0.59 points, +16.2%" in text
    assert "tone:" in text and "coherence:" not in text
    assert "pays back in 3.0 days" in text and "$150.00 a month against $400.00" in text
    assert "too few scored samples to rule out overfitting" in text
    assert json.loads(json.dumps(v.to_dict()))["action"] == "deploy"


def test_better_but_slower_deploys_with_a_warning() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    c = ArmData("base", {"relevance": _scores(BASE, n, 1)}, latency_s=rng.lognormal(0, 0.4, 3000))
    t = ArmData("fine_tuned", {"relevance": _scores(BETTER, n, 2)}, latency_s=2 * rng.lognormal(0, 0.4, 3000))
    v = decide(compare_arms(c, t))
    assert v.action is Action.DEPLOY
    assert any(r.startswith("latency_p95_s:") and r.endswith("WORSE.") for r in v.reasons)


def test_similar_scores_send_you_back_to_the_training_data() -> None:
    v = decide(_compare({}, {}, 5000))
    assert v.action is Action.REVISIT_DATA
    assert "within ±0.2 points" in v.reasons[0] and "training data" in v.reasons[0]


def test_worse_scores_mean_fewer_epochs_and_more_diverse_data() -> None:
    v = decide(_compare({}, {"groundedness": WORSE, "relevance": BETTER}, 1000))
    assert v.action is Action.REDUCE_EPOCHS
    assert "Reduce epochs" in v.reasons[0]
    assert v.reasons[1].startswith("groundedness: fine_tuned 3.15 vs base 3.65 (-0.50 points")


def test_better_in_domain_worse_out_of_domain_is_overfitting() -> None:
    in_domain = _compare({}, {"relevance": BETTER, "tone": BETTER}, 800)
    out_of_domain = _compare({}, {"relevance": WORSE}, 400)
    overall = _compare({}, {"tone": BETTER}, 1200)
    v = decide(overall, in_domain=in_domain, out_of_domain=out_of_domain)
    assert v.action is Action.OVERFITTING
    assert "Add diverse examples" in v.reasons[0] and "reduce the number of epochs" in v.reasons[0]
    assert any(r.startswith("Out-of-domain relevance:") for r in v.reasons)
    # without an in-domain split, all traffic stands for the training topics
    alone = decide(overall, out_of_domain=out_of_domain)
    assert alone.action is Action.OVERFITTING and alone.reasons[1].startswith("All traffic: tone:")
    # better everywhere is not overfitting
    assert decide(overall, in_domain=in_domain, out_of_domain=in_domain).action is Action.DEPLOY


def test_too_little_data_keeps_collecting_with_the_samples_still_needed() -> None:
    cmp = _compare({}, {}, 100)
    v = decide(cmp)
    assert v.action is Action.KEEP_COLLECTING
    sd = max(np.sqrt((m.control_sd**2 + m.treatment_sd**2) / 2) for m in cmp.metrics.values())
    expected = required_sample_size(0.2, float(sd), 0.05, 0.8, cmp.k_metrics, planned_n=cmp.planned_n) - 100
    assert v.needed_samples == expected > 0
    assert f"About {expected} more scored samples per arm" in v.reasons[0]
    tiny = decide(_compare({}, {}, 20))
    assert tiny.action is Action.KEEP_COLLECTING and "at least 30 judge scores" in tiny.reasons[0]
    assert tiny.needed_samples is not None and tiny.needed_samples > v.needed_samples


def test_samples_needed_keeps_growing_past_the_planned_size() -> None:
    cmp = _compare({}, {"relevance": [0.05, 0.09, 0.25, 0.35, 0.26]}, 3000)
    assert samples_needed(cmp) > 0


def test_a_sample_ratio_mismatch_voids_the_comparison() -> None:
    srm = sample_ratio_mismatch({"base": 1100, "fine_tuned": 900}, {"base": 0.5, "fine_tuned": 0.5})
    v = decide(_compare({}, {"relevance": BETTER}, 1000), srm=srm)
    assert v.action is Action.VOID and len(v.reasons) == 1
    assert "base 55.0% / fine_tuned 45.0%" in v.reasons[0] and "50.0% / 50.0%" in v.reasons[0]
    assert "void" in v.reasons[0] and "< 0.001" in v.reasons[0]
    fine = sample_ratio_mismatch({"base": 1000, "fine_tuned": 1000}, {"base": 0.5, "fine_tuned": 0.5})
    assert decide(_compare({}, {"relevance": BETTER}, 1000), srm=fine).action is Action.DEPLOY


@pytest.mark.parametrize("action", list(Action))
def test_every_action_is_a_stable_string(action: Action) -> None:
    assert action.value == str(action)


def test_a_dearer_fine_tune_says_what_it_costs() -> None:
    cost = project_costs(
        ArmCost("base", 100, 0.3), ArmCost("fine_tuned", 100, 0.8), requests_per_day=1000, job_cost_usd=25.0
    )
    v = decide(_compare({}, {"relevance": BETTER}, 1000), cost=cost)
    assert v.action is Action.DEPLOY
    assert any("costing $5.00 more a day" in r and "never pays back" in r for r in v.reasons)
