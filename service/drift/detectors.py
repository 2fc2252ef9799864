"""The statistical core of the drift detectors: pure functions over numbers, one verdict each.

Every detector returns a :class:`DetectorResult` (active or not, the value it watched, the
threshold it compared with, and JSON-safe evidence). The scheduled job that feeds them from the
database, writes the signal rows and sets the gauges lives elsewhere.

Choices, each to keep false alarms rare while firing on real changes:

- quality below threshold: fires only when the one-sided upper confidence bound (Student t,
  level 1 - alpha) of the window's mean is below the threshold, i.e. when the data show the mean
  is below it, not when a noisy mean dips under it;
- a share rising (out-of-domain, low-confidence, negative feedback, errors): one-sided
  two-proportion z-test against a baseline window, Fisher's exact test when an expected count is
  below 5 (rare events such as errors);
- p95 latency above the control's: a bootstrap of the p95 ratio. The bootstrap distribution of an
  order statistic is known in closed form (binomial), so draws cost O(1) whatever the sample size;
- change in an arm's own latency: one-sided CUSUM on standardised log latency, location and scale
  estimated robustly (median, MAD) from the arm's history;
- sample-ratio mismatch: chi-square goodness of fit of the observed split against the configured
  weights, p < 0.001 (the usual convention); a mismatch voids the comparison.

Pure numpy/scipy, CPU-bound, no I/O. Must not import ``service.gateway`` or ``service.store``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "SRM_P_THRESHOLD",
    "Detector",
    "DetectorResult",
    "latency_change_point",
    "latency_p95_above_control",
    "quality_below_threshold",
    "sample_ratio_mismatch",
    "share_rising",
]

FloatArray = NDArray[np.float64]

#: the conventional sample-ratio-mismatch threshold: with it, a correct 50/50 split trips once in 1,000 checks
SRM_P_THRESHOLD = 0.001
_MAD_TO_SD = 1.4826  # MAD of a normal distribution x this = its standard deviation


class Detector(StrEnum):
    """Detector names: the closed set used for signal rows and the ``detector`` metric label."""

    QUALITY_BELOW_THRESHOLD = "quality_below_threshold"
    OOD_SHARE_RISING = "ood_share_rising"
    LOW_CONFIDENCE_SHARE_RISING = "low_confidence_share_rising"
    NEGATIVE_FEEDBACK_RISING = "negative_feedback_rising"
    ERROR_RATE_SPIKE = "error_rate_spike"
    LATENCY_P95_ABOVE_CONTROL = "latency_p95_above_control"
    LATENCY_CHANGE_POINT = "latency_change_point"
    SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """One detector's outcome. ``value`` is NaN when there was no data to compute it;
    ``evidence`` holds only JSON types (non-finite numbers become None)."""

    detector: str
    active: bool
    value: float
    threshold: float | None
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "active": self.active,
            "value": _json(self.value),
            "threshold": _json(self.threshold),
            "evidence": self.evidence,
        }


def _json(value: Any) -> Any:
    """Numpy scalars to Python, non-finite floats to None, recursively."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _result(
    detector: str, active: bool, value: float, threshold: float | None, **evidence: Any
) -> DetectorResult:
    return DetectorResult(str(detector), bool(active), float(value), threshold, _json(evidence))


def _clean(values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def quality_below_threshold(
    scores: ArrayLike, threshold: float, *, alpha: float = 0.01, min_samples: int = 20
) -> DetectorResult:
    """Fires when the window's mean score is confidently below ``threshold``: the one-sided
    upper bound (Student t, level 1 - alpha) is below it. Quiet with fewer than ``min_samples``."""
    x = _clean(scores)
    n = int(x.size)
    if n < max(min_samples, 2):
        mean = float(x.mean()) if n else math.nan
        return _result(
            Detector.QUALITY_BELOW_THRESHOLD, False, mean, threshold, n=n, reason="insufficient data"
        )
    mean, se = float(x.mean()), float(x.std(ddof=1)) / math.sqrt(n)
    upper = mean + float(stats.t.ppf(1.0 - alpha, n - 1)) * se
    return _result(
        Detector.QUALITY_BELOW_THRESHOLD, upper < threshold, mean, threshold,
        n=n, mean=mean, upper_bound=upper, alpha=alpha, method="one-sided Student t upper bound",
    )  # fmt: skip


def share_rising(
    detector: Detector | str,
    hits: int,
    n: int,
    baseline_hits: int,
    baseline_n: int,
    *,
    alpha: float = 0.01,
    min_increase: float = 0.0,
    min_samples: int = 30,
) -> DetectorResult:
    """Fires when the current window's share ``hits / n`` is significantly above the baseline's
    (one-sided, level alpha) and higher by more than ``min_increase`` (absolute share).

    For out-of-domain share, low-confidence share, negative-feedback rate and error rate: pass
    the matching :class:`Detector`. Raises ValueError on counts outside 0 <= hits <= n.
    """
    if not (0 <= hits <= n and 0 <= baseline_hits <= baseline_n):
        raise ValueError(
            f"counts must satisfy 0 <= hits <= n, got {hits}/{n} and {baseline_hits}/{baseline_n}"
        )
    share = hits / n if n else math.nan
    base = baseline_hits / baseline_n if baseline_n else math.nan
    if min(n, baseline_n) < min_samples:
        return _result(detector, False, share, base, n=n, baseline_n=baseline_n, reason="insufficient data")
    pooled = (hits + baseline_hits) / (n + baseline_n)
    expected_min = min(pooled, 1.0 - pooled) * min(n, baseline_n)
    z: float | None = None
    if expected_min < 5.0:
        # the normal approximation fails for rare events (a handful of errors): exact test
        _, p_value = stats.fisher_exact(
            [[hits, n - hits], [baseline_hits, baseline_n - baseline_hits]], alternative="greater"
        )
        test = "fisher exact, one-sided"
    else:
        z = (share - base) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n + 1.0 / baseline_n))
        p_value = float(stats.norm.sf(z))
        test = "two-proportion z, one-sided"
    active = p_value < alpha and share - base > min_increase
    return _result(
        detector, active, share, base, hits=hits, n=n, baseline_hits=baseline_hits, baseline_n=baseline_n,
        increase=share - base, z=z, p_value=float(p_value), alpha=alpha, min_increase=min_increase, test=test,
    )  # fmt: skip


def _p95_bootstrap(x_sorted: FloatArray, draws: int, rng: np.random.Generator) -> tuple[float, FloatArray]:
    """(sample p95, bootstrap draws of it). The p95 of a resample is the k-th order statistic,
    and P(X*_(k) <= x_(j)) = P(Binomial(n, j/n) ≥ k): draw from that law, not by resampling."""
    n = x_sorted.size
    k = math.ceil(0.95 * n)
    cdf = stats.binom.sf(k - 1, n, np.arange(1, n + 1) / n)
    idx = np.minimum(np.searchsorted(cdf, rng.random(draws)), n - 1)
    return float(x_sorted[k - 1]), x_sorted[idx]


def latency_p95_above_control(
    control_s: ArrayLike,
    treatment_s: ArrayLike,
    *,
    alpha: float = 0.01,
    tolerance: float = 0.0,
    draws: int = 4000,
    min_samples: int = 100,
    seed: int = 0,
) -> DetectorResult:
    """Fires when the treatment's p95 latency exceeds the control's: the one-sided bootstrap
    lower bound (level 1 - alpha) of the ratio p95_treatment / p95_control is above
    ``1 + tolerance``. Deterministic for a given ``seed``. Value and threshold are the two p95s (s)."""
    c, t = np.sort(_clean(control_s)), np.sort(_clean(treatment_s))
    if min(c.size, t.size) < min_samples:
        return _result(
            Detector.LATENCY_P95_ABOVE_CONTROL, False, math.nan, None,
            n_control=int(c.size), n_treatment=int(t.size), reason="insufficient data",
        )  # fmt: skip
    rng = np.random.default_rng(seed)
    p95_c, boot_c = _p95_bootstrap(c, draws, rng)
    p95_t, boot_t = _p95_bootstrap(t, draws, rng)
    ratios = boot_t / np.maximum(boot_c, 1e-12)
    lower = float(np.quantile(ratios, alpha))
    return _result(
        Detector.LATENCY_P95_ABOVE_CONTROL, lower > 1.0 + tolerance, p95_t, p95_c,
        p95_control_s=p95_c, p95_treatment_s=p95_t, ratio=p95_t / p95_c if p95_c > 0 else None,
        ratio_lower_bound=lower, alpha=alpha, tolerance=tolerance, draws=draws,
        n_control=int(c.size), n_treatment=int(t.size), method="bootstrap of the p95 ratio",
    )  # fmt: skip


def latency_change_point(
    history_s: ArrayLike,
    recent_s: ArrayLike,
    *,
    drift: float = 0.5,
    h: float = 15.0,
    min_history: int = 300,
) -> DetectorResult:
    """Fires when an arm's recent latencies (in time order) rose against its own history.

    One-sided CUSUM S_t = max(0, S_{t-1} + z_t - drift) on z = (log latency - mu) / sigma, with mu and sigma
    the median and MAD-based sd of the history's log latencies; alarm when S_t > h. ``drift``
    0.5 targets shifts of one sd of log latency; h = 15 keeps false alarms rare: 0.4 % of windows
    of 2,000 stationary lognormal points with mu and sigma estimated from 300 points, while a x1.3
    latency rise (sigma_log 0.5) is caught in 95 % of runs after a median 139 points, a x1.6 rise
    after 30 (bench/stats_simulation.py, 1,000 runs each).
    Value is the largest S_t, threshold is h.
    """
    hist, recent = _clean(history_s), _clean(recent_s)
    hist, recent = np.log(hist[hist > 0]), np.log(recent[recent > 0])
    if hist.size < min_history or recent.size == 0:
        return _result(
            Detector.LATENCY_CHANGE_POINT, False, math.nan, h,
            n_history=int(hist.size), n_recent=int(recent.size), reason="insufficient data",
        )  # fmt: skip
    mu = float(np.median(hist))
    sigma = max(float(np.median(np.abs(hist - mu))) * _MAD_TO_SD, 1e-9)
    z = (recent - mu) / sigma
    # Lindley's recursion in closed form: S_t = C_t - min(0, min_{s<=t} C_s), C = cumsum(z - drift)
    c = np.cumsum(z - drift)
    s = c - np.minimum(np.minimum.accumulate(c), 0.0)
    above = np.flatnonzero(s > h)
    evidence: dict[str, Any] = {
        "n_history": int(hist.size), "n_recent": int(recent.size), "drift": drift,
        "history_median_s": math.exp(mu), "recent_median_s": float(np.exp(np.median(recent))),
        "log_sd": sigma, "method": "one-sided CUSUM on standardised log latency",
    }  # fmt: skip
    if above.size:
        alarm = int(above[0])
        zeros = np.flatnonzero(s[: alarm + 1] <= 0.0)
        start = int(zeros[-1]) + 1 if zeros.size else 0
        shift = float(z[start:].mean())
        evidence.update(
            alarm_index=alarm, change_index=start, shift_sd=shift, latency_ratio=math.exp(shift * sigma)
        )
    return _result(Detector.LATENCY_CHANGE_POINT, above.size > 0, float(s.max()), h, **evidence)


def sample_ratio_mismatch(
    observed: Mapping[str, int],
    weights: Mapping[str, float],
    *,
    p_threshold: float = SRM_P_THRESHOLD,
    min_total: int = 100,
) -> DetectorResult:
    """Chi-square goodness of fit of the observed per-arm counts against the configured weights.

    Fires when p < ``p_threshold``, or when an arm with weight 0 received traffic. A mismatch
    means assignment is broken (or records are lost unevenly), so the arms are no longer
    comparable: the comparison is void. Value is the p-value. Raises ValueError when the weights
    name no arm with a positive weight.
    """
    arms = sorted(set(observed) | set(weights))
    counts = np.array([int(observed.get(a, 0)) for a in arms], dtype=np.float64)
    w = np.array([max(float(weights.get(a, 0.0)), 0.0) for a in arms])
    if w.sum() <= 0:
        raise ValueError("at least one arm needs a positive weight")
    total = int(counts.sum())
    expected_share = w / w.sum()
    evidence: dict[str, Any] = {
        "observed": dict(zip(arms, counts.astype(int).tolist(), strict=True)),
        "observed_share": dict(zip(arms, (counts / total if total else counts).tolist(), strict=True)),
        "expected_share": dict(zip(arms, expected_share.tolist(), strict=True)),
        "total": total,
    }
    stray = [a for a, wi, ci in zip(arms, w, counts, strict=True) if wi == 0 and ci > 0]
    if stray:
        return _result(
            Detector.SAMPLE_RATIO_MISMATCH, True, 0.0, p_threshold, **evidence,
            reason=f"arms with weight 0 received traffic: {stray}; the comparison is void",
        )  # fmt: skip
    live = w > 0
    if total < min_total or live.sum() < 2:
        return _result(
            Detector.SAMPLE_RATIO_MISMATCH, False, 1.0, p_threshold, **evidence, reason="insufficient data"
        )
    chi2, p_value = stats.chisquare(counts[live], total * expected_share[live])
    active = bool(p_value < p_threshold)
    return _result(
        Detector.SAMPLE_RATIO_MISMATCH, active, float(p_value), p_threshold, **evidence,
        chi2=float(chi2), dof=int(live.sum()) - 1, p_value=float(p_value),
        reason=(
            "sample-ratio mismatch: the observed split differs from the configured weights, "
            "so the comparison is void" if active else "split consistent with the configured weights"
        ),
    )  # fmt: skip
