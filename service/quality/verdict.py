"""The study guide's "What to watch for" table as rules, each verdict with reasons a person reads.

| signal                                   | action                                          |
|------------------------------------------|-------------------------------------------------|
| sample-ratio mismatch                    | void: the arms are not comparable                |
| better in-domain, worse out-of-domain    | overfitting: add diverse examples, reduce epochs |
| fine-tune significantly worse            | reduce epochs, improve data diversity            |
| fine-tune significantly better           | deploy (promote)                                 |
| every interval within the margin         | similar: revisit the training data quality       |
| none of the above                        | keep collecting, with the samples still needed   |

Rules are checked in that order. "Quality metrics" are the judge scores and, once it has enough
data, the feedback score; latency and cost never decide, they add reasons (a fine-tune that is
better but slower deploys with a warning). "Similar" means each quality difference's interval
lies within ±``margin_points`` (scores) or ±``margin_relative`` x the control mean (feedback).

Pure, no I/O. Must not import ``service.gateway`` or ``service.store``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from service.drift.detectors import DetectorResult
from service.quality.compare import (
    COST,
    FEEDBACK,
    Comparison,
    MetricComparison,
    MetricKind,
    required_sample_size,
)
from service.quality.cost import CostProjection

__all__ = [
    "DEFAULT_MARGIN_POINTS",
    "DEFAULT_MARGIN_RELATIVE",
    "Action",
    "Verdict",
    "decide",
    "describe",
    "samples_needed",
]

DEFAULT_MARGIN_POINTS = 0.2  # on the 1-5 judge scale: smaller differences do not matter in practice
DEFAULT_MARGIN_RELATIVE = 0.05
_DEFAULT_SCORE_SD = 1.0  # typical spread of 1-5 judge scores, used before any score has been seen


class Action(StrEnum):
    DEPLOY = "deploy"
    REVISIT_DATA = "revisit_data"
    REDUCE_EPOCHS = "reduce_epochs"
    OVERFITTING = "overfitting"
    KEEP_COLLECTING = "keep_collecting"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do, why (sentences with the numbers), and for ``keep_collecting`` how many more
    scored samples per arm are needed."""

    action: Action
    reasons: list[str] = field(default_factory=list)
    needed_samples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": str(self.action),
            "reasons": list(self.reasons),
            "needed_samples": self.needed_samples,
        }


def _fmt(value: float, m: MetricComparison) -> str:
    if not math.isfinite(value):
        return "n/a"
    if m.kind is MetricKind.P95:
        return f"{value:.2f} s"
    if m.metric == COST:
        return f"${value:.4f}"
    return f"{value:.2f}"


def _pct_interval(m: MetricComparison) -> str:
    lo, hi = m.improvement_ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "interval unbounded so far"
    return f"interval {lo:+.1f}% to {hi:+.1f}%"


def describe(m: MetricComparison, control: str, treatment: str) -> str:
    """One metric as a sentence: both arms, the change in percent and its interval, the n."""
    change = f"{m.diff:+.2f} points, " if m.kind is MetricKind.SCORE else ""
    pct = f"{m.improvement_pct:+.1f}%" if math.isfinite(m.improvement_pct) else "n/a"
    return (
        f"{m.metric}: {treatment} {_fmt(m.treatment_mean, m)} vs {control} {_fmt(m.control_mean, m)} "
        f"({change}{pct}; {_pct_interval(m)}; n = {m.n_treatment} vs {m.n_control})"
    )


def _margin(m: MetricComparison, points: float, relative: float) -> float:
    return points if m.kind is MetricKind.SCORE else relative * abs(m.control_mean)


def _quality(c: Comparison) -> list[MetricComparison]:
    return [
        m
        for m in c.metrics.values()
        if m.enough_data and (m.kind is MetricKind.SCORE or m.metric == FEEDBACK)
    ]


def samples_needed(c: Comparison, effect: float = DEFAULT_MARGIN_POINTS, power: float = 0.8) -> int:
    """More scored samples per arm before a judge-score difference of ``effect`` points would be
    detected with ``power``. When the arms already have that many, the effect is halved until
    more are needed (a difference that is still unresolved must be smaller)."""
    scores = [m for m in c.metrics.values() if m.kind is MetricKind.SCORE]
    sds = [math.sqrt((m.control_sd**2 + m.treatment_sd**2) / 2.0) for m in scores]
    sd = max(sds, default=_DEFAULT_SCORE_SD) or _DEFAULT_SCORE_SD
    have = min((min(m.n_control, m.n_treatment) for m in scores), default=0)
    for _ in range(30):
        need = required_sample_size(effect, sd, c.alpha, power, c.k_metrics, planned_n=c.planned_n)
        if need > have:
            return need - have
        effect /= 2.0
    return have  # unreachable in practice: doubling the data is the honest fallback


def _srm_reason(srm: DetectorResult) -> str:
    ev = srm.evidence
    observed, expected = ev.get("observed_share", {}), ev.get("expected_share", {})
    split = " / ".join(f"{a} {100 * float(s):.1f}%" for a, s in observed.items())
    configured = " / ".join(f"{100 * float(s):.1f}%" for s in expected.values())
    p = ev.get("p_value")
    test = f" (chi-square p = {p:.2g} < {srm.threshold:g})" if p is not None and srm.threshold else ""
    return (
        f"Sample-ratio mismatch: the observed split {split} differs from the configured {configured} "
        f"over {ev.get('total', 0)} requests{test}. Assignment or recording is broken, so the arms are not "
        "comparable: the comparison is void until the cause is fixed."
    )


def _operations(c: Comparison, cost: CostProjection | None) -> list[str]:
    notes = []
    for m in c.metrics.values():
        if m.kind is MetricKind.P95 or m.metric == COST:
            verdict = {True: "better", False: "WORSE", None: "not significantly different"}[m.better]
            notes.append(f"{describe(m, c.control, c.treatment)}: {verdict}.")
    if cost is not None:
        line = (
            f"At {cost.requests_per_day:,.0f} requests a day, {cost.treatment} costs "
            f"${cost.treatment_monthly_cost_usd:,.2f} a month against ${cost.control_monthly_cost_usd:,.2f} "
            f"({cost.change_pct:+.0f}%, {'saving' if cost.daily_savings_usd >= 0 else 'costing'} "
            f"${abs(cost.daily_savings_usd):,.2f} {'' if cost.daily_savings_usd >= 0 else 'more '}a day)"
        )
        if cost.job_cost_usd is not None:
            line += (
                f"; the ${cost.job_cost_usd:,.2f} fine-tuning job pays back in {cost.payback_days:.1f} days"
                if cost.payback_days is not None
                else f"; the ${cost.job_cost_usd:,.2f} fine-tuning job never pays back at this volume"
            )
        notes.append(line + ".")
    return notes


def _overfitting(
    overall: Comparison, in_domain: Comparison | None, out_of_domain: Comparison | None
) -> list[str]:
    """Better on the training topics (in-domain, else all traffic), worse out-of-domain."""
    if out_of_domain is None:
        return []
    home, where = (in_domain, "In-domain") if in_domain is not None else (overall, "All traffic:")
    better_in = [m for m in _quality(home) if m.better is True]
    worse_in = [m for m in _quality(home) if m.better is False]
    worse_out = [m for m in _quality(out_of_domain) if m.better is False]
    if not better_in or worse_in or not worse_out:
        return []
    c, t = out_of_domain.control, out_of_domain.treatment
    return [
        f"{t} is better than {c} on in-domain traffic but worse on out-of-domain traffic: "
        "it learned the training topics and lost general ability (overfitting). "
        "Add diverse examples to the training data and reduce the number of epochs.",
        *(f"{where} {describe(m, c, t)}." for m in better_in),
        *(f"Out-of-domain {describe(m, c, t)}." for m in worse_out),
    ]


def decide(
    comparison: Comparison,
    *,
    in_domain: Comparison | None = None,
    out_of_domain: Comparison | None = None,
    srm: DetectorResult | None = None,
    cost: CostProjection | None = None,
    margin_points: float = DEFAULT_MARGIN_POINTS,
    margin_relative: float = DEFAULT_MARGIN_RELATIVE,
    power: float = 0.8,
) -> Verdict:
    """Apply the decision table to ``comparison`` (all traffic) and, when given, its in-domain
    and out-of-domain splits, the sample-ratio-mismatch result and the cost projection."""
    c, ctl, trt = comparison, comparison.control, comparison.treatment
    level = f"{100 * (1 - c.alpha):.0f}% anytime-valid intervals, simultaneous over {c.k_metrics} metrics"
    if srm is not None and srm.active:
        return Verdict(Action.VOID, [_srm_reason(srm)])
    quality = _quality(c)
    if not any(m.kind is MetricKind.SCORE for m in quality):
        need = samples_needed(c, margin_points, power)
        return Verdict(
            Action.KEEP_COLLECTING,
            [
                f"Not enough scored samples yet: each arm needs at least {c.min_samples} judge scores "
                f"per metric before any difference is declared. About {need} more scored samples per arm "
                f"would detect a {margin_points:g}-point difference with {power:.0%} power."
            ],
            need,
        )
    overfit = _overfitting(c, in_domain, out_of_domain)
    if overfit:
        return Verdict(Action.OVERFITTING, overfit)
    worse = [m for m in quality if m.better is False]
    better = [m for m in quality if m.better is True]
    if worse:
        return Verdict(
            Action.REDUCE_EPOCHS,
            [
                f"{trt} scores significantly lower than {ctl} ({level}): overfitting or poor training "
                "data. Reduce epochs and improve the diversity of the training data.",
                *(describe(m, ctl, trt) + "." for m in worse),
            ],
        )
    if better:
        reasons = [
            f"{trt} scores significantly higher than {ctl} and lower on no quality metric ({level}): "
            "deploy it to production (promote).",
            *(describe(m, ctl, trt) + "." for m in better),
            *_operations(c, cost),
        ]
        if out_of_domain is None or not _quality(out_of_domain):
            reasons.append("Out-of-domain traffic had too few scored samples to rule out overfitting.")
        return Verdict(Action.DEPLOY, reasons)
    outside = [
        m for m in quality
        if m.diff_ci[0] < -_margin(m, margin_points, margin_relative)
        or m.diff_ci[1] > _margin(m, margin_points, margin_relative)
    ]  # fmt: skip
    if not outside:
        return Verdict(
            Action.REVISIT_DATA,
            [
                f"{trt} and {ctl} score the same within ±{margin_points:g} points ({level}): the "
                "fine-tuning did not help much. Revisit the quality of the training data.",
                *(describe(m, ctl, trt) + "." for m in quality),
                *_operations(c, cost),
            ],
        )
    need = samples_needed(c, margin_points, power)
    return Verdict(
        Action.KEEP_COLLECTING,
        [
            f"No significant difference yet, and the intervals still reach past ±{margin_points:g} "
            f"points on {', '.join(m.metric for m in outside)}: keep collecting. About {need} more scored "
            f"samples per arm would detect a {margin_points:g}-point difference with {power:.0%} power.",
            *(describe(m, ctl, trt) + "." for m in quality),
        ],
        need,
    )
