"""Cost per request, projected monthly cost and the payback time of the fine-tuning job.

The study guide's case: 50,000 conversations a month, $0.008 per request on the base model and
$0.003 on the fine-tune (-63 %), "the cost reduction alone pays for the fine-tuning job in 3 days".
At that volume the saving is $250 a month, $8.33 a day, so a 3-day payback means a $25 job; the
guide's own "$200-500 per run" would take 24-60 days. The function below simply does the arithmetic.

Pure arithmetic, no I/O. Must not import ``service.gateway`` or ``service.store``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DAYS_PER_MONTH", "ArmCost", "CostProjection", "project_costs", "requests_per_day"]

#: the month used by projections (the study guide's "/month" figures)
DAYS_PER_MONTH = 30


@dataclass(frozen=True, slots=True)
class ArmCost:
    """What one arm served over the observation window: request count and total USD spent."""

    arm: str
    requests: int
    total_cost_usd: float

    @property
    def cost_per_request_usd(self) -> float:
        """USD per request; raises ValueError when the arm served no request."""
        if self.requests <= 0:
            raise ValueError(f"arm {self.arm!r} served no request: no cost per request")
        return self.total_cost_usd / self.requests


@dataclass(frozen=True, slots=True)
class CostProjection:
    """Per-request and monthly costs of both arms at ``requests_per_day``, and the payback.

    ``daily_savings_usd`` is what serving the whole volume with the treatment instead of the
    control saves per day (negative: it costs more). ``payback_days`` is the fine-tuning job's
    cost over the daily saving; None when no job cost is known or the fine-tune never pays back.
    """

    control: str
    treatment: str
    control_cost_per_request_usd: float
    treatment_cost_per_request_usd: float
    change_pct: float
    requests_per_day: float
    control_monthly_cost_usd: float
    treatment_monthly_cost_usd: float
    daily_savings_usd: float
    monthly_savings_usd: float
    job_cost_usd: float | None
    payback_days: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (a non-finite number becomes None)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


def requests_per_day(requests: int, window_s: float) -> float:
    """Daily volume observed over a window of ``window_s`` seconds; raises ValueError if <= 0."""
    if window_s <= 0 or requests < 0:
        raise ValueError(f"need a positive window and a non-negative count, got {requests} in {window_s} s")
    return requests * 86_400.0 / window_s


def project_costs(
    control: ArmCost,
    treatment: ArmCost,
    *,
    requests_per_day: float,
    job_cost_usd: float | None = None,
) -> CostProjection:
    """Project both arms' costs at the current volume (all traffic on one arm, 30-day month) and
    the payback time of a fine-tuning job costing ``job_cost_usd``.

    Raises ValueError when an arm served no request, or on a negative volume or job cost.
    """
    if requests_per_day < 0 or (job_cost_usd is not None and job_cost_usd < 0):
        raise ValueError("requests_per_day and job_cost_usd must not be negative")
    cpr_c, cpr_t = control.cost_per_request_usd, treatment.cost_per_request_usd
    daily_savings = (cpr_c - cpr_t) * requests_per_day
    payback: float | None = None
    if job_cost_usd is not None:
        if job_cost_usd == 0:
            payback = 0.0
        elif daily_savings > 0:
            payback = job_cost_usd / daily_savings
    return CostProjection(
        control=control.arm,
        treatment=treatment.arm,
        control_cost_per_request_usd=cpr_c,
        treatment_cost_per_request_usd=cpr_t,
        change_pct=(cpr_t / cpr_c - 1.0) * 100.0 if cpr_c > 0 else math.nan,
        requests_per_day=requests_per_day,
        control_monthly_cost_usd=cpr_c * requests_per_day * DAYS_PER_MONTH,
        treatment_monthly_cost_usd=cpr_t * requests_per_day * DAYS_PER_MONTH,
        daily_savings_usd=daily_savings,
        monthly_savings_usd=daily_savings * DAYS_PER_MONTH,
        job_cost_usd=job_cost_usd,
        payback_days=payback,
    )
