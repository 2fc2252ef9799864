"""The experiment report: per-arm numbers, the base-vs-fine-tune comparison, the verdict, cost and signals.

:func:`build_report` reads the store once (:func:`service.quality.data.load_observations`), runs the
statistics of :mod:`service.quality.compare`, the decision table of :mod:`service.quality.verdict`,
the projection of :mod:`service.quality.cost` and the sample-ratio check, and returns a
:class:`Report` whose :meth:`Report.to_dict` is the JSON contract of ``tunewatch report --format json``
and ``GET /admin/experiments/{name}/report`` (DESIGN.md, "Contracts"): ``experiment``, ``stage``,
``arms`` (by arm name), ``comparison`` (by metric), ``verdict``, plus ``generated_at``, ``cost``,
``srm``, ``in_domain``, ``out_of_domain``, ``low_confidence_rate``, ``signals`` and ``timeline``.

The window starts when the experiment's current stage started (``experiment_states``, written by
the admin API: a stage or weight change restarts the statistics), whose stage and weights also give
the expected split; an explicit ``since`` wins. Without a stored state or an experiments config the
stage is ``"unknown"``, the control is ``base`` (else the first arm
by name), the treatment ``fine_tuned`` (else the next arm), each arm's ``weight`` is its observed
share of routed traffic, and no sample-ratio check is possible (``srm`` is null).

Blocking and CPU-bound (SQL, numpy, scipy): call it from a thread, the CLI or a ``def`` route.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy import func, select

from service.config import ExperimentConfig, ExperimentsFile, Stage, effective_weights
from service.drift.detectors import DetectorResult, sample_ratio_mismatch
from service.errors import NotFoundError
from service.quality.compare import (
    DEFAULT_ALPHA,
    DEFAULT_PLANNED_N,
    Comparison,
    compare_arms,
    mean_confidence_sequence,
)
from service.quality.cost import ArmCost, CostProjection, project_costs, requests_per_day
from service.quality.data import ArmObservations, Split, load_observations
from service.quality.verdict import Verdict, decide
from service.store.db import Database
from service.store.experiments import load_states
from service.store.models import Signal

__all__ = ["UNKNOWN_STAGE", "Report", "build_report", "pick_arms", "timeline_bucket_s"]

UNKNOWN_STAGE = "unknown"
_BUCKETS_S = (300, 900, 3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400)
_MAX_BUCKETS = 48


def _num(value: float | None) -> float | None:
    """JSON-safe float: None for None and non-finite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _p95(values: np.ndarray[Any, Any]) -> float | None:
    return float(np.percentile(values, 95)) if values.size else None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a report shows. ``observations`` (the raw arrays, for charts) is not in :meth:`to_dict`."""

    experiment: str
    stage: str
    control: str
    treatment: str
    generated_at: datetime
    since: datetime | None
    arms: dict[str, dict[str, Any]]
    comparison: Comparison
    in_domain: Comparison
    out_of_domain: Comparison
    verdict: Verdict
    cost: CostProjection | None
    srm: DetectorResult | None
    signals: list[dict[str, Any]]
    timeline: dict[str, Any]
    observations: dict[str, ArmObservations] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (DESIGN.md): JSON-safe, non-finite numbers are null."""
        c = self.comparison
        return {
            "experiment": self.experiment,
            "stage": self.stage,
            "generated_at": self.generated_at.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "control": self.control,
            "treatment": self.treatment,
            "arms": self.arms,
            "comparison": {name: m.to_dict() for name, m in c.metrics.items()},
            "statistics": {
                "alpha": c.alpha,
                "k_metrics": c.k_metrics,
                "planned_n": c.planned_n,
                "min_samples": c.min_samples,
                "insufficient": list(c.insufficient),
                "method": "anytime-valid confidence sequences, Bonferroni over the metrics",
            },
            "verdict": self.verdict.to_dict(),
            "cost": self.cost.to_dict() if self.cost else None,
            "srm": self.srm.to_dict() if self.srm else None,
            "in_domain": self._split(Split.IN_DOMAIN, self.in_domain),
            "out_of_domain": self._split(Split.OUT_OF_DOMAIN, self.out_of_domain),
            "low_confidence_rate": {arm: a["low_confidence_rate"] for arm, a in self.arms.items()},
            "signals": self.signals,
            "timeline": self.timeline,
        }

    def _split(self, split: Split, comparison: Comparison) -> dict[str, Any]:
        alpha = comparison.alpha / max(comparison.k_metrics, 1)
        arms = {
            arm: _score_stats(obs.arm_data(split).scores, alpha, comparison.planned_n)
            for arm, obs in self.observations.items()
        }
        return {"arms": arms, "comparison": {n: m.to_dict() for n, m in comparison.metrics.items()}}


def _score_stats(scores: Mapping[str, Any], alpha: float, planned_n: int) -> dict[str, dict[str, Any]]:
    """Per evaluator: mean, anytime-valid interval at ``alpha`` (null below 2 scores), n."""
    out: dict[str, dict[str, Any]] = {}
    for evaluator, values in scores.items():
        x = np.asarray(values, dtype=np.float64)
        if x.size >= 2:
            mean, (low, high), _ = mean_confidence_sequence(x, alpha, planned_n)
            out[evaluator] = {
                "mean": _num(mean),
                "ci_low": _num(low),
                "ci_high": _num(high),
                "n": int(x.size),
            }
        else:
            mean_1 = float(x.mean()) if x.size else None
            out[evaluator] = {"mean": _num(mean_1), "ci_low": None, "ci_high": None, "n": int(x.size)}
    return out


def pick_arms(config: ExperimentConfig | None, observed: list[str]) -> tuple[list[str], str, str]:
    """(every arm, control, treatment): the config's, else ``base`` / ``fine_tuned`` by convention."""
    if config is not None:
        arms = [a.name for a in config.arms]
        extra = [a for a in dict.fromkeys(observed) if a not in arms]
        return [*arms, *extra], config.control_arm, config.treatment_arm
    arms = sorted(set(observed)) or ["base", "fine_tuned"]
    control = "base" if "base" in arms else arms[0]
    others = [a for a in arms if a != control]
    treatment = "fine_tuned" if "fine_tuned" in others else (others[0] if others else control)
    return arms, control, treatment


def config_shares(config: ExperimentConfig, stage: Stage) -> dict[str, float]:
    """The share of routed traffic each arm gets at ``stage`` under the config's weights."""
    weights = {a.name: a.weight for a in config.arms}
    return effective_weights(stage, weights, config.control_arm, config.treatment_arm, config.canary_weight)


def _nanmean(values: np.ndarray[Any, Any]) -> float | None:
    known = values[np.isfinite(values)]
    return float(known.mean()) if known.size else None


def timeline_bucket_s(span_s: float) -> int:
    """The smallest of 5 min, 15 min, 1 h, 3 h, 6 h, 1 day, 1 week giving at most 48 buckets."""
    return next((b for b in _BUCKETS_S if span_s / b <= _MAX_BUCKETS), _BUCKETS_S[-1])


def _timeline(obs: Mapping[str, ArmObservations], start: float, end: float) -> dict[str, Any]:
    """Per time bucket and arm: requests, out-of-domain rate, low-confidence rate, mean judge score."""
    bucket = timeline_bucket_s(max(end - start, 1.0))
    first = math.floor(start / bucket) * bucket
    count = max(1, math.ceil((end - first) / bucket))
    edges = first + bucket * np.arange(count + 1, dtype=np.float64)
    arms: dict[str, dict[str, list[Any]]] = {}
    for arm, o in obs.items():
        idx = np.clip(((o.request_at - first) // bucket).astype(int), 0, count - 1)
        pooled_at = np.concatenate([*o.score_at.values()]) if o.scores else np.empty(0)
        pooled = np.concatenate([*o.scores.values()]) if o.scores else np.empty(0)
        s_idx = np.clip(((pooled_at - first) // bucket).astype(int), 0, count - 1)
        series: dict[str, list[Any]] = {"requests": [], "out_of_domain_rate": [], "low_confidence_rate": [],
                                        "quality_mean": [], "quality_n": []}  # fmt: skip
        for b in range(count):
            in_b = idx == b
            ood, low, q = o.ood[in_b], o.low_confidence[in_b], pooled[s_idx == b]
            series["requests"].append(int(in_b.sum()))
            series["out_of_domain_rate"].append(_nanmean(ood))
            series["low_confidence_rate"].append(_nanmean(low))
            series["quality_mean"].append(_num(float(q.mean())) if q.size else None)
            series["quality_n"].append(int(q.size))
        arms[arm] = series
    starts = [datetime.fromtimestamp(float(t), UTC).isoformat() for t in edges[:-1]]
    return {"bucket_s": bucket, "starts": starts, "arms": arms}


def _latest_signals(db: Database, experiment: str) -> list[dict[str, Any]]:
    """The rows of the detector job's latest run for ``experiment`` (one run writes them at one time)."""
    sig = Signal.__table__.c
    with db.begin() as conn:
        last = conn.execute(select(func.max(sig.created_at)).where(sig.experiment == experiment)).scalar()
        if last is None:
            return []
        rows = conn.execute(
            select(sig.created_at, sig.arm, sig.detector, sig.value, sig.threshold, sig.active, sig.evidence)
            .where(sig.experiment == experiment, sig.created_at == last)
            .order_by(sig.detector, sig.arm, sig.id)
        ).all()
    return [
        {"detector": r.detector, "arm": r.arm, "at": r.created_at.isoformat(), "active": bool(r.active),
         "value": _num(r.value), "threshold": _num(r.threshold),
         "evidence": orjson.loads(r.evidence) if r.evidence else None}
        for r in rows
    ]  # fmt: skip


def _arm_summary(o: ArmObservations, weight: float | None, alpha: float, planned_n: int) -> dict[str, Any]:
    ood_hits, ood_n = o.rate(o.ood)
    low_hits, low_n = o.rate(o.low_confidence)
    cost = o.known_cost_usd
    latency = o.served_latency_s
    return {
        "weight": _num(weight),
        "requests": o.requests,
        "errors": o.errors,
        "samples": o.samples,
        "scored": o.scored,
        "feedback": int(o.feedback.size),
        "out_of_domain_rate": ood_hits / ood_n if ood_n else None,
        "latency_p95_s": _p95(latency),
        "ttft_p95_s": _p95(o.served_ttft_s),
        "cost_per_request_usd": float(cost.mean()) if cost.size else None,
        "scores": _score_stats(o.scores, alpha, planned_n),
        # extras beyond the contract
        "routed": o.routed,
        "shadow": o.requests - o.routed,
        "error_rate": o.errors / o.requests if o.requests else None,
        "latency_p50_s": float(np.percentile(latency, 50)) if latency.size else None,
        "cost_usd": float(cost.sum()),
        "negative_feedback": int(o.feedback_negative.sum()),
        "feedback_score_mean": _num(float(o.feedback.mean())) if o.feedback.size else None,
        "out_of_domain_scored": ood_n,
        "low_confidence_rate": low_hits / low_n if low_n else None,
    }


def _cost(obs: Mapping[str, ArmObservations], control: str, treatment: str, span_s: float,
          job_cost_usd: float | None) -> CostProjection | None:  # fmt: skip
    c, t = obs[control].known_cost_usd, obs[treatment].known_cost_usd
    total = sum(o.routed for o in obs.values())
    if not c.size or not t.size or span_s <= 0 or control == treatment:
        return None
    return project_costs(
        ArmCost(control, int(c.size), float(c.sum())),
        ArmCost(treatment, int(t.size), float(t.sum())),
        requests_per_day=requests_per_day(total, span_s),
        job_cost_usd=job_cost_usd,
    )


def build_report(
    db: Database,
    config: ExperimentsFile | ExperimentConfig | None,
    experiment_name: str,
    *,
    stage_override: Stage | str | None = None,
    now: datetime | None = None,
    since: datetime | None = None,
    job_cost_usd: float | None = None,
    weights: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    planned_n: int = DEFAULT_PLANNED_N,
    from_stage_start: bool = True,
) -> Report:
    """Build the report of ``experiment_name`` over the requests in ``[since, now)``.

    ``since`` None means: from when the experiment's current stage started, as stored in
    ``experiment_states`` (the admin API writes it), else all data; ``from_stage_start=False``
    ignores the stored state (stage, weights and start). The stage is ``stage_override``, else the
    stored one, else the config's. ``weights`` are the live routing shares, which win over the
    stored and configured ones. ``job_cost_usd`` is the fine-tuning job's cost, for the payback.
    Raises ``NotFoundError`` when the experiment is not configured, not stored and has no data.
    Blocking and CPU-bound.
    """
    exp = config.experiment(experiment_name) if isinstance(config, ExperimentsFile) else config
    if exp is not None and exp.name != experiment_name:
        exp = None
    stored = load_states(db).get(experiment_name) if from_stage_start else None
    if since is None and stored is not None:
        since = stored.stage_started_at  # a stage or weight change restarts the statistics
    until = now
    now = now or datetime.now(UTC)
    obs = load_observations(db, experiment_name, since=since, until=until)
    if exp is None and not obs and stored is None:
        raise NotFoundError(f"No experiment named {experiment_name!r} is configured or has recorded data.")
    arms, control, treatment = pick_arms(exp, [*obs, *(stored.weights if stored else ())])
    obs = {arm: obs.get(arm) or ArmObservations(arm=arm) for arm in arms}
    stage = exp.stage.value if exp else UNKNOWN_STAGE
    stage = str(stage_override) if stage_override is not None else (stored.stage if stored else stage)
    shares: dict[str, float] | None = dict(weights) if weights is not None else None
    known_stage = Stage(stage) if stage in {s.value for s in Stage} else None
    if shares is None and stored is not None and known_stage is not None:
        canary = exp.canary_weight if exp else ExperimentConfig.model_fields["canary_weight"].default
        shares = effective_weights(known_stage, stored.weights, control, treatment, canary)
    if shares is None and exp is not None:
        shares = config_shares(exp, known_stage or exp.stage)
    routed_total = sum(o.routed for o in obs.values())

    comparison = compare_arms(obs[control].arm_data(), obs[treatment].arm_data(), alpha, planned_n=planned_n)
    splits = {
        s: compare_arms(obs[control].arm_data(s), obs[treatment].arm_data(s), alpha, planned_n=planned_n)
        for s in (Split.IN_DOMAIN, Split.OUT_OF_DOMAIN)
    }
    srm = None
    if shares is not None and any(w > 0 for w in shares.values()):
        srm = sample_ratio_mismatch({a: o.routed for a, o in obs.items()}, shares)
    first = min((float(o.request_at[0]) for o in obs.values() if o.requests), default=now.timestamp())
    start = since.timestamp() if since is not None else first
    if job_cost_usd is None and exp is not None:
        job_cost_usd = exp.fine_tuning_job_cost_usd
    cost = _cost(obs, control, treatment, now.timestamp() - start, job_cost_usd)
    in_dom, out_dom = splits[Split.IN_DOMAIN], splits[Split.OUT_OF_DOMAIN]
    verdict = decide(
        comparison,
        in_domain=in_dom if in_dom.metrics else None,
        out_of_domain=out_dom if out_dom.metrics else None,
        srm=srm,
        cost=cost,
    )
    arm_alpha = comparison.alpha / max(comparison.k_metrics, 1)
    summaries = {}
    for arm, o in obs.items():
        observed = o.routed / routed_total if routed_total else None
        weight = shares.get(arm, 0.0) if shares is not None else observed
        summaries[arm] = _arm_summary(o, weight, arm_alpha, planned_n)
    return Report(
        experiment=experiment_name, stage=stage, control=control, treatment=treatment, generated_at=now,
        since=since, arms=summaries, comparison=comparison, in_domain=in_dom, out_of_domain=out_dom,
        verdict=verdict, cost=cost, srm=srm, signals=_latest_signals(db, experiment_name),
        timeline=_timeline(obs, start, now.timestamp()), observations=obs,
    )  # fmt: skip
