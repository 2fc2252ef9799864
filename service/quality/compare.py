"""Compare two arms with confidence sequences: intervals that stay valid however often you look.

The monitoring job recomputes the comparison every few minutes as samples arrive. A fixed-n
interval checked that often declares a difference in an A/A test far more often than its alpha,
so every interval here is *anytime-valid*: the probability that it ever excludes the truth, over
all looks, is at most its alpha.

- Means (judge scores, feedback score, cost per request) and their difference use the normal
  mixture boundary: the asymptotic confidence sequence of Waudby-Smith et al. (2021, "Time-uniform
  central limit theory and asymptotic confidence sequences"), which for a difference in means is
  the mixture SPRT of Johari et al. (2017, "Always valid inference"). The mixing variance is tuned
  so the interval is tightest at ``planned_n`` samples per arm; it stays valid at every n.
- p95 latency and p95 time to first token: a distribution-free order-statistic interval per arm.
  The count of observations below the true p95 is Binomial(n, 0.95); a beta-binomial mixture
  martingale on that count (Howard & Ramdas 2022, "Sequential estimation of quantiles") gives the
  acceptable counts, hence two order statistics. It is exact (no normal approximation) and also
  anytime-valid. The difference and ratio of the two p95s are bounded conservatively by combining
  the two arms' intervals, each at half the metric's alpha (union bound).
- The relative improvement of a mean is the ratio of means, with a Fieller interval built from the
  same boundary, so it excludes 0% exactly when the difference's interval excludes 0.
- Several metrics are tested at once: Bonferroni, each metric at ``alpha / k`` where k is the
  number of metrics given, so the chance of any false "significant" over all metrics and all looks
  is at most ``alpha``.

Pure numpy/scipy, CPU-bound (run it off the event loop). Must not import gateway, store, telemetry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

__all__ = [
    "COST",
    "DEFAULT_ALPHA",
    "DEFAULT_PLANNED_N",
    "FEEDBACK",
    "LATENCY_P95",
    "MIN_SAMPLES",
    "TTFT_P95",
    "ArmData",
    "Comparison",
    "MetricComparison",
    "MetricKind",
    "compare_arms",
    "fixed_horizon_sample_size",
    "mean_confidence_sequence",
    "quantile_confidence_sequence",
    "required_sample_size",
]

FloatArray = NDArray[np.float64]
Interval = tuple[float, float]

DEFAULT_ALPHA = 0.05
#: samples per arm at which the boundary is tuned to be tightest (it is valid at every n)
DEFAULT_PLANNED_N = 500
#: below this many observations in an arm, a metric is never declared significant: the normal
#: approximation behind the mean boundary needs some data, whatever the interval says
MIN_SAMPLES = 30
QUANTILE = 0.95

FEEDBACK = "feedback_score"
LATENCY_P95 = "latency_p95_s"
TTFT_P95 = "ttft_p95_s"
COST = "cost_per_request_usd"

# a zero sample variance (every score identical) would make the boundary degenerate
_VAR_FLOOR = 1e-12


class MetricKind(StrEnum):
    SCORE = "score"  # a judge score on 1-5, higher is better
    MEAN = "mean"  # the mean of a per-request value (feedback score, cost)
    P95 = "p95"  # the 95th percentile of a per-request duration


@dataclass(frozen=True, slots=True)
class ArmData:
    """One arm's raw observations. Arrays may be empty or None when a metric has no data.

    ``scores`` maps evaluator name (relevance, coherence, fluency, groundedness, tone ...) to judge
    scores on 1-5; ``feedback`` is a per-feedback numeric score (higher is better);
    ``latency_s`` and ``ttft_s`` are per-request seconds; ``cost_usd`` is per-request USD.
    """

    name: str
    scores: Mapping[str, ArrayLike] = field(default_factory=dict)
    feedback: ArrayLike | None = None
    latency_s: ArrayLike | None = None
    ttft_s: ArrayLike | None = None
    cost_usd: ArrayLike | None = None

    def series(self) -> dict[str, tuple[MetricKind, bool, FloatArray]]:
        """Metric name → (kind, higher_is_better, finite values as float64)."""
        out: dict[str, tuple[MetricKind, bool, FloatArray]] = {}
        for name, scores in self.scores.items():
            out[name] = (MetricKind.SCORE, True, _clean(scores))
        for name, kind, higher, values in (
            (FEEDBACK, MetricKind.MEAN, True, self.feedback),
            (LATENCY_P95, MetricKind.P95, False, self.latency_s),
            (TTFT_P95, MetricKind.P95, False, self.ttft_s),
            (COST, MetricKind.MEAN, False, self.cost_usd),
        ):
            if values is not None:
                out[name] = (kind, higher, _clean(values))
        return out


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """Treatment vs control on one metric. Intervals are simultaneous over all the metrics.

    For P95 metrics ``*_mean`` holds the p95 itself (seconds). ``diff`` is treatment - control;
    ``improvement_pct`` is (treatment / control - 1) x 100, so -57 on latency means 57 % faster.
    ``better`` is True/False only when ``significant``, read with the metric's direction;
    ``p_value`` is the Bonferroni-adjusted anytime-valid p-value (None for P95 metrics).
    Infinite bounds mean "unbounded with this little data".
    """

    metric: str
    kind: MetricKind
    higher_is_better: bool
    control_mean: float
    control_ci: Interval
    treatment_mean: float
    treatment_ci: Interval
    diff: float
    diff_ci: Interval
    improvement_pct: float
    improvement_ci: Interval
    n_control: int
    n_treatment: int
    control_sd: float
    treatment_sd: float
    alpha: float
    p_value: float | None
    enough_data: bool
    significant: bool
    better: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: non-finite numbers become None, intervals become [low, high]."""
        return {f: _json_safe(getattr(self, f)) for f in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Comparison:
    """The comparison table. ``insufficient`` lists metrics with fewer than 2 values in an arm."""

    control: str
    treatment: str
    alpha: float
    k_metrics: int
    planned_n: int
    metrics: dict[str, MetricComparison]
    insufficient: tuple[str, ...] = ()
    min_samples: int = MIN_SAMPLES

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``metrics`` maps metric name to :meth:`MetricComparison.to_dict`."""
        out = {f: _json_safe(getattr(self, f)) for f in self.__dataclass_fields__ if f != "metrics"}
        return {**out, "metrics": {name: m.to_dict() for name, m in self.metrics.items()}}


def _clean(values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def _json_safe(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _tuning(alpha: float) -> float:
    """Mixing variance / estimator variance at the planned n that minimises the width there."""
    two_log = -2.0 * math.log(alpha)
    return two_log + math.log1p(two_log)


def _multiplier(ratio: float, alpha: float) -> float:
    """g with half-width = sqrt(g * v); ``ratio`` = mixing variance tau^2 / estimator variance v."""
    return (1.0 + 1.0 / ratio) * (math.log1p(ratio) - 2.0 * math.log(alpha))


def _half_width(v: float, v_planned: float, alpha: float) -> tuple[float, float]:
    """(half-width, g) of the normal-mixture boundary for an estimator of variance v."""
    g = _multiplier(_tuning(alpha) * v_planned / v, alpha)
    return math.sqrt(g * v), g


def mean_confidence_sequence(
    x: ArrayLike, alpha: float = DEFAULT_ALPHA, planned_n: int = DEFAULT_PLANNED_N
) -> tuple[float, Interval, float]:
    """(mean, anytime-valid two-sided interval at level 1 - alpha, sample sd) of ``x``.

    Raises ValueError with fewer than 2 finite values.
    """
    arr = _clean(x)
    if arr.size < 2:
        raise ValueError(f"need at least 2 values for an interval, got {arr.size}")
    mean, sd = float(arr.mean()), float(arr.std(ddof=1))
    var = max(sd * sd, _VAR_FLOOR)
    h, _ = _half_width(var / arr.size, var / planned_n, alpha)
    return mean, (mean - h, mean + h), sd


def quantile_confidence_sequence(
    x: ArrayLike, q: float = QUANTILE, alpha: float = DEFAULT_ALPHA, planned_n: int = DEFAULT_PLANNED_N
) -> tuple[float, Interval]:
    """(sample quantile, anytime-valid order-statistic interval for the q-quantile) of ``x``.

    Distribution-free and exact for continuous data (beta-binomial mixture on the count below
    the quantile). A bound is ±inf while too few values exist to pin it down (e.g. the upper
    bound of a p95 below ~60 values). Raises ValueError with no finite values.
    """
    arr = np.sort(_clean(x))
    n = arr.size
    if n == 0:
        raise ValueError("need at least 1 value for a quantile")
    # Beta prior centred on q whose variance matches the normal mixture tuned at planned_n
    strength = max(planned_n / _tuning(alpha) - 1.0, 2.0)
    a, b = q * strength, (1.0 - q) * strength
    counts = np.arange(n + 1, dtype=np.float64)
    log_m = (
        special.betaln(a + counts, b + n - counts)
        - special.betaln(a, b)
        - counts * math.log(q)
        - (n - counts) * math.log1p(-q)
    )
    # log_m is convex in the count, so the accepted counts form one run [lo, hi]
    accepted = np.flatnonzero(log_m < -math.log(alpha))
    lo_count, hi_count = int(accepted[0]), int(accepted[-1])
    low = float(arr[lo_count - 1]) if lo_count >= 1 else -math.inf
    high = float(arr[hi_count]) if hi_count < n else math.inf
    return float(np.quantile(arr, q)), (low, high)


def _fieller(mt: float, vt: float, mc: float, vc: float, g: float) -> Interval:
    """Ratio mt/mc: the r with (mt - r*mc)^2 <= g*(vt + r^2*vc); unbounded when mc is not clear of 0."""
    a = mc * mc - g * vc
    if a <= 0:
        return (-math.inf, math.inf)
    disc = math.sqrt(max(g * (mt * mt * vc + mc * mc * vt - g * vt * vc), 0.0))
    r1, r2 = (mt * mc - disc) / a, (mt * mc + disc) / a
    return (min(r1, r2), max(r1, r2))


def _pct(interval: Interval) -> Interval:
    return ((interval[0] - 1.0) * 100.0, (interval[1] - 1.0) * 100.0)


class _Parts(NamedTuple):
    means: tuple[float, float]  # control, treatment
    cis: tuple[Interval, Interval]
    sds: tuple[float, float]
    diff_ci: Interval
    ratio_ci: Interval  # treatment / control
    p_value: float | None


def _mean_parts(c: FloatArray, t: FloatArray, alpha: float, k: int, planned_n: int) -> _Parts:
    mc, ci_c, sd_c = mean_confidence_sequence(c, alpha, planned_n)
    mt, ci_t, sd_t = mean_confidence_sequence(t, alpha, planned_n)
    var_c, var_t = max(sd_c * sd_c, _VAR_FLOOR), max(sd_t * sd_t, _VAR_FLOOR)
    vc, vt = var_c / c.size, var_t / t.size
    v, tau2 = vc + vt, _tuning(alpha) * (var_c + var_t) / planned_n
    h, g = _half_width(v, (var_c + var_t) / planned_n, alpha)
    diff = mt - mc
    # the mixture likelihood ratio; 1/Lambda at any stopping time is a valid p-value
    log_lambda = 0.5 * math.log(v / (v + tau2)) + tau2 * diff * diff / (2.0 * v * (v + tau2))
    p_adjusted = min(1.0, math.exp(-log_lambda) * k)
    ratio_ci = _fieller(mt, vt, mc, vc, g)
    return _Parts((mc, mt), (ci_c, ci_t), (sd_c, sd_t), (diff - h, diff + h), ratio_ci, p_adjusted)


def _p95_parts(c: FloatArray, t: FloatArray, alpha: float, planned_n: int) -> _Parts:
    # each arm at alpha/2 so the pair (hence the difference and the ratio) holds at alpha
    qc, (lc, uc) = quantile_confidence_sequence(c, QUANTILE, alpha / 2.0, planned_n)
    qt, (lt, ut) = quantile_confidence_sequence(t, QUANTILE, alpha / 2.0, planned_n)
    # durations are never negative, so the ratio is bounded below by 0
    ratio_low = max(lt / uc, 0.0) if math.isfinite(uc) and uc > 0 else 0.0
    ratio_high = ut / lc if math.isfinite(ut) and lc > 0 else math.inf
    sds = (float(c.std(ddof=1)), float(t.std(ddof=1)))
    return _Parts((qc, qt), ((lc, uc), (lt, ut)), sds, (lt - uc, ut - lc), (ratio_low, ratio_high), None)


def compare_arms(
    control: ArmData,
    treatment: ArmData,
    alpha: float = DEFAULT_ALPHA,
    *,
    planned_n: int = DEFAULT_PLANNED_N,
    min_samples: int = MIN_SAMPLES,
) -> Comparison:
    """Compare ``treatment`` with ``control`` on every metric either arm has data for.

    ``alpha`` is the family-wise error over all metrics and all looks; each metric gets
    ``alpha / k`` (k = number of metrics given). Pure, CPU-bound, O(n log n) per metric.
    Raises ValueError if alpha is not in (0, 1) or planned_n < 2.
    """
    if not 0.0 < alpha < 1.0 or planned_n < 2:
        raise ValueError(f"alpha must be in (0, 1) and planned_n >= 2, got {alpha}, {planned_n}")
    series_c, series_t = control.series(), treatment.series()
    names = list(dict.fromkeys([*series_c, *series_t]))
    k = max(len(names), 1)
    metrics: dict[str, MetricComparison] = {}
    for name in names:
        if name not in series_c or name not in series_t:
            continue
        (kind, higher, c), t = series_c[name], series_t[name][2]
        if min(c.size, t.size) < 2:
            continue
        if kind is MetricKind.P95:
            parts = _p95_parts(c, t, alpha / k, planned_n)
        else:
            parts = _mean_parts(c, t, alpha / k, k, planned_n)
        (mc, mt), (lo, hi) = parts.means, parts.diff_ci
        significant = min(c.size, t.size) >= min_samples and (lo > 0 or hi < 0)
        metrics[name] = MetricComparison(
            metric=name, kind=kind, higher_is_better=higher, control_mean=mc, control_ci=parts.cis[0],
            treatment_mean=mt, treatment_ci=parts.cis[1], diff=mt - mc, diff_ci=parts.diff_ci,
            improvement_pct=(mt / mc - 1.0) * 100.0 if mc != 0 else math.nan,
            improvement_ci=_pct(parts.ratio_ci), n_control=int(c.size), n_treatment=int(t.size),
            control_sd=parts.sds[0], treatment_sd=parts.sds[1], alpha=alpha / k, p_value=parts.p_value,
            enough_data=min(c.size, t.size) >= min_samples, significant=significant,
            better=(mt > mc) == higher if significant else None,
        )  # fmt: skip
    return Comparison(
        control=control.name, treatment=treatment.name, alpha=alpha, k_metrics=k, planned_n=planned_n,
        metrics=metrics, insufficient=tuple(n for n in names if n not in metrics), min_samples=min_samples,
    )  # fmt: skip


def _power(n: int, effect: float, sd: float, alpha: float, planned_n: int | None) -> float:
    v = 2.0 * sd * sd / n
    h, _ = _half_width(v, 2.0 * sd * sd / (planned_n or n), alpha)
    s = math.sqrt(v)
    return float(stats.norm.cdf((abs(effect) - h) / s) + stats.norm.cdf((-abs(effect) - h) / s))


def required_sample_size(
    effect: float,
    sd: float,
    alpha: float = DEFAULT_ALPHA,
    power: float = 0.8,
    k_metrics: int = 1,
    *,
    planned_n: int | None = DEFAULT_PLANNED_N,
) -> int:
    """Samples per arm (equal arms) at which the anytime-valid difference interval, at
    ``alpha / k_metrics``, excludes 0 with probability ``power`` when the true difference is
    ``effect`` and both arms have standard deviation ``sd``.

    Computed from the boundary itself under the normal approximation (no simulation; checked by
    simulation in the tests). Pass the ``planned_n`` given to :func:`compare_arms`; None tunes the
    boundary at the answer itself. Never below :data:`MIN_SAMPLES`. Raises ValueError on a
    non-positive effect or sd, or on alpha/power outside (0, 1).
    """
    if effect == 0 or sd <= 0 or not 0 < alpha < 1 or not 0 < power < 1 or k_metrics < 1:
        raise ValueError("effect must be non-zero, sd > 0, alpha and power in (0, 1), k_metrics >= 1")
    alpha_m = alpha / k_metrics
    lo, hi = MIN_SAMPLES, MIN_SAMPLES
    while _power(hi, effect, sd, alpha_m, planned_n) < power:
        lo, hi = hi, hi * 2
        if hi > 10**12:
            raise ValueError("the effect is too small to detect with any practical sample size")
    if hi == MIN_SAMPLES:
        return MIN_SAMPLES
    while hi - lo > 1:  # invariant: power(lo) < target <= power(hi)
        mid = (lo + hi) // 2
        if _power(mid, effect, sd, alpha_m, planned_n) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def fixed_horizon_sample_size(
    effect: float, sd: float, alpha: float = DEFAULT_ALPHA, power: float = 0.8, k_metrics: int = 1
) -> int:
    """Per-arm n of a classic two-sided z-test looked at once: the baseline the anytime-valid
    design pays for peeking against (``required_sample_size / fixed_horizon_sample_size``)."""
    z = stats.norm.ppf(1.0 - alpha / k_metrics / 2.0) + stats.norm.ppf(power)
    return math.ceil(2.0 * float(z * sd / effect) ** 2)
