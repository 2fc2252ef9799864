"""Cost projections and payback, on the study guide's numbers."""

from __future__ import annotations

import json

import pytest

from service.quality.cost import ArmCost, project_costs, requests_per_day

# the study guide: 50,000 conversations a month, $0.008 per request on the base, $0.003 fine-tuned
MONTHLY = 50_000
BASE = ArmCost("base", 50_000, 0.008 * 50_000)
FINE = ArmCost("fine_tuned", 20_000, 0.003 * 20_000)


def test_the_study_guide_example() -> None:
    p = project_costs(BASE, FINE, requests_per_day=MONTHLY / 30, job_cost_usd=25.0)
    assert p.control_cost_per_request_usd == pytest.approx(0.008)
    assert p.treatment_cost_per_request_usd == pytest.approx(0.003)
    assert p.change_pct == pytest.approx(-62.5)  # the guide rounds to -63 %
    assert p.control_monthly_cost_usd == pytest.approx(400.0)
    assert p.treatment_monthly_cost_usd == pytest.approx(150.0)
    assert p.monthly_savings_usd == pytest.approx(250.0)
    assert p.daily_savings_usd == pytest.approx(250.0 / 30)
    # "pays for the fine-tuning job in 3 days" holds for a $25 job at this volume
    assert p.payback_days == pytest.approx(3.0)


def test_the_guides_200_to_500_dollar_runs_take_weeks_to_pay_back() -> None:
    low = project_costs(BASE, FINE, requests_per_day=MONTHLY / 30, job_cost_usd=200.0)
    high = project_costs(BASE, FINE, requests_per_day=MONTHLY / 30, job_cost_usd=500.0)
    assert low.payback_days == pytest.approx(24.0)
    assert high.payback_days == pytest.approx(60.0)


def test_no_payback_when_unknown_or_never() -> None:
    assert project_costs(BASE, FINE, requests_per_day=1000).payback_days is None
    dearer = project_costs(FINE, BASE, requests_per_day=1000, job_cost_usd=25.0)
    assert dearer.daily_savings_usd < 0 and dearer.payback_days is None
    assert project_costs(BASE, BASE, requests_per_day=1000, job_cost_usd=25.0).payback_days is None
    assert project_costs(BASE, FINE, requests_per_day=1000, job_cost_usd=0.0).payback_days == 0.0


def test_volume_from_a_window_and_bad_input() -> None:
    assert requests_per_day(50_000, 30 * 86_400) == pytest.approx(50_000 / 30)
    assert requests_per_day(100, 3600) == pytest.approx(2400)
    with pytest.raises(ValueError):
        requests_per_day(10, 0)
    with pytest.raises(ValueError):
        project_costs(ArmCost("base", 0, 0.0), FINE, requests_per_day=10)
    with pytest.raises(ValueError):
        project_costs(BASE, FINE, requests_per_day=10, job_cost_usd=-1.0)


def test_to_dict_is_json() -> None:
    doc = project_costs(BASE, FINE, requests_per_day=100, job_cost_usd=25.0).to_dict()
    assert json.loads(json.dumps(doc, allow_nan=False))["treatment"] == "fine_tuned"
