"""The report on a SQLite database filled by hand: the JSON contract, values computed independently,
the verdict on data built to reach it, the sample-ratio check against configured weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from service.config import ExperimentsFile, parse_experiments
from service.errors import NotFoundError
from service.quality.data import Split, feedback_value, load_observations
from service.quality.report import build_report, pick_arms, timeline_bucket_s
from service.store.db import Database
from service.store.experiments import save_state
from service.store.migrate import upgrade
from tests.unit.quality.report_rows import EVALUATORS, NOW, Rows, deploy_dataset

CONTRACT_ARM_KEYS = {
    "weight", "requests", "errors", "samples", "scored", "feedback", "out_of_domain_rate",
    "latency_p95_s", "ttft_p95_s", "cost_per_request_usd", "scores",
}  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'report.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def experiments(
    weights: tuple[float, float] = (0.5, 0.5), stage: str = "ab", name: str = "demo"
) -> ExperimentsFile:
    return parse_experiments({
        "upstreams": {"b": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
                      "f": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}},
        "experiments": [{"name": name, "stage": stage, "control": "base", "arms": [
            {"name": "base", "upstream": "b", "weight": weights[0]},
            {"name": "fine_tuned", "upstream": "f", "weight": weights[1]}]}],
    })  # fmt: skip


def test_the_json_has_every_contract_key(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows)
    rows.write(db)
    report = build_report(db, experiments(), "demo", now=NOW, job_cost_usd=300.0).to_dict()
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN or Infinity anywhere
    assert orjson.loads(orjson.dumps(report)) == json.loads(json.dumps(report))
    assert {"experiment", "stage", "arms", "comparison", "verdict"} <= set(report)
    assert {
        "generated_at",
        "cost",
        "srm",
        "in_domain",
        "out_of_domain",
        "low_confidence_rate",
        "signals",
    } <= set(report)
    assert report["experiment"] == "demo" and report["stage"] == "ab"
    assert set(report["arms"]) == {"base", "fine_tuned"}
    for arm in report["arms"].values():
        assert set(arm) >= CONTRACT_ARM_KEYS
        assert set(arm["scores"]) == set(EVALUATORS)
        for stats in arm["scores"].values():
            assert set(stats) == {"mean", "ci_low", "ci_high", "n"}
            assert stats["ci_low"] < stats["mean"] < stats["ci_high"]
    expected = {*EVALUATORS, "feedback_score", "latency_p95_s", "ttft_p95_s", "cost_per_request_usd"}
    assert set(report["comparison"]) == expected
    for metric in report["comparison"].values():
        assert isinstance(metric["improvement_pct"], float)
        low, high = metric["improvement_ci"]
        assert low is None or high is None or low <= high
    assert set(report["verdict"]) >= {"action", "reasons"} and report["verdict"]["reasons"]
    assert {"payback_days", "treatment_monthly_cost_usd", "requests_per_day"} <= set(report["cost"])


def test_values_match_an_independent_computation(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows)
    rows.requests[1]["status"] = 500  # one base error: counted, kept out of the latency percentiles
    rows.write(db)
    report = build_report(db, None, "demo", now=NOW).to_dict()
    for arm in ("base", "fine_tuned"):
        reqs = [r for r in rows.requests if r["arm"] == arm]
        ok = [r["latency_s"] for r in reqs if r["status"] == 200]
        a = report["arms"][arm]
        assert a["requests"] == len(reqs) == 400
        assert a["errors"] == sum(r["status"] != 200 for r in reqs)
        assert a["latency_p95_s"] == pytest.approx(float(np.percentile(ok, 95)))
        ttft = [r["ttft_s"] for r in reqs if r["status"] == 200]
        assert a["ttft_p95_s"] == pytest.approx(float(np.percentile(ttft, 95)))
        assert a["cost_per_request_usd"] == pytest.approx(np.mean([r["cost_usd"] for r in reqs]))
        assert a["out_of_domain_rate"] == pytest.approx(0.1)
        assert a["samples"] == a["scored"] == 400
        assert a["feedback"] == sum(f["arm"] == arm for f in rows.feedback) == 100
        assert a["weight"] == pytest.approx(0.5)  # no config: the observed share
        for ev in EVALUATORS:
            values = [s["score"] for s in rows.scores if s["arm"] == arm and s["evaluator"] == ev]
            assert a["scores"][ev]["mean"] == pytest.approx(np.mean(values))
            assert a["scores"][ev]["n"] == len(values)
        fb = [1.0 if f["thumbs"] == "up" else 0.0 for f in rows.feedback if f["arm"] == arm]
        assert report["comparison"]["feedback_score"][
            "control_mean" if arm == "base" else "treatment_mean"
        ] == (pytest.approx(np.mean(fb)))
    rel = report["comparison"]["relevance"]
    assert rel["improvement_pct"] == pytest.approx((rel["treatment_mean"] / rel["control_mean"] - 1) * 100)
    assert report["stage"] == "unknown" and report["srm"] is None
    # the in-domain / out-of-domain split partitions the scores
    for arm in ("base", "fine_tuned"):
        n_in = report["in_domain"]["arms"][arm]["relevance"]["n"]
        n_out = report["out_of_domain"]["arms"][arm]["relevance"]["n"]
        assert (n_in, n_out) == (360, 40)


def test_a_better_fine_tune_is_deployed_with_cost_and_payback(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows)
    rows.write(db)
    report = build_report(db, experiments(), "demo", now=NOW, job_cost_usd=300.0)
    assert report.verdict.action == "deploy", report.verdict.reasons
    assert report.srm is not None and not report.srm.active
    assert all(report.comparison.metrics[ev].better for ev in EVALUATORS)
    cost = report.cost
    assert cost is not None
    # 800 requests over 6 hours = 3,200 a day; $0.005 saved per request = $16 a day; $300 / $16
    assert cost.requests_per_day == pytest.approx(3200.0)
    assert cost.daily_savings_usd == pytest.approx(16.0)
    assert cost.payback_days == pytest.approx(300.0 / 16.0)
    assert any("pays back in 18.7 days" in r for r in report.verdict.reasons)


def test_worse_out_of_domain_is_overfitting(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows, n=600, ft_ood_mean=1.6)
    rows.write(db)
    report = build_report(db, experiments(), "demo", now=NOW)
    assert report.verdict.action == "overfitting", report.verdict.reasons
    ood = report.to_dict()["out_of_domain"]["arms"]
    assert ood["fine_tuned"]["relevance"]["mean"] < ood["base"]["relevance"]["mean"]


def test_a_skewed_split_voids_the_comparison(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows)
    rows.write(db)
    # 400 / 400 observed where 70 / 30 is configured: the assignment is broken
    report = build_report(db, experiments((0.7, 0.3)), "demo", now=NOW)
    assert report.srm is not None and report.srm.active
    assert report.verdict.action == "void"
    assert report.to_dict()["arms"]["base"]["weight"] == pytest.approx(0.7)
    # live routing shares win over the file; the stage override decides the effective shares too
    assert build_report(db, experiments((0.7, 0.3)), "demo", now=NOW, weights={"base": 0.5, "fine_tuned": 0.5}
                        ).verdict.action == "deploy"  # fmt: skip
    shadow = build_report(db, experiments(), "demo", now=NOW, stage_override="shadow")
    assert shadow.stage == "shadow" and shadow.verdict.action == "void"


def test_little_data_keeps_collecting_and_unknown_experiments_are_refused(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows, n=10)
    rows.write(db)
    report = build_report(db, experiments(), "demo", now=NOW)
    assert report.verdict.action == "keep_collecting"
    assert report.verdict.needed_samples is not None and report.verdict.needed_samples > 0
    with pytest.raises(NotFoundError, match="nope"):
        build_report(db, experiments(), "nope", now=NOW)
    # configured but without traffic: a report of zeros, not an error
    empty = build_report(db, experiments(name="quiet"), "quiet", now=NOW).to_dict()
    assert empty["arms"]["base"]["requests"] == 0 and empty["arms"]["base"]["latency_p95_s"] is None
    assert empty["verdict"]["action"] == "keep_collecting" and empty["cost"] is None
    json.dumps(empty, allow_nan=False)


def test_since_bounds_the_window(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows, hours=6.0)
    rows.write(db)
    report = build_report(db, None, "demo", now=NOW, since=NOW - timedelta(hours=3)).to_dict()
    assert report["arms"]["base"]["requests"] == 200
    assert report["since"] == (NOW - timedelta(hours=3)).isoformat()
    assert report["cost"]["requests_per_day"] == pytest.approx(400 * 8)  # 400 requests in 3 hours


def test_timeline_buckets_the_traffic(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows, hours=6.0)
    rows.write(db)
    timeline = build_report(db, None, "demo", now=NOW).to_dict()["timeline"]
    assert timeline["bucket_s"] == 900  # 6 hours in 15-minute buckets
    assert sum(timeline["arms"]["base"]["requests"]) == 400
    assert len(timeline["starts"]) == len(timeline["arms"]["base"]["quality_mean"]) == 24
    assert timeline_bucket_s(3600) == 300 and timeline_bucket_s(30 * 86_400) == 86_400


def test_feedback_is_normalised_to_0_1() -> None:
    assert [feedback_value(s, None) for s in (1, 3, 5)] == [0.0, 0.5, 1.0]
    assert feedback_value(1, "up") == 1.0 and feedback_value(5, "down") == 0.0  # thumbs win
    assert np.isnan(feedback_value(None, None))


def test_observations_split_by_domain_and_low_confidence(db: Database) -> None:
    rows = Rows()
    at = NOW - timedelta(minutes=5)
    rows.score(rows.request("base", at, ood=True, logprob=-2.0), {"relevance": 2.0})
    rows.score(rows.request("base", at, ood=False), {"relevance": 2.0, "coherence": 2.0})  # judge: low
    rows.request("base", at, ood=None, logprob=-0.1, status=503, ttft_s=None, cost_usd=None)
    rows.write(db)
    base = load_observations(db, "demo")["base"]
    assert base.requests == 3 and base.errors == 1 and base.rate(base.ood) == (1, 2)
    assert base.rate(base.low_confidence) == (2, 3)
    assert base.served_ttft_s.size == 2 and base.known_cost_usd.size == 2
    assert np.size(base.arm_data(Split.OUT_OF_DOMAIN).scores["relevance"]) == 1
    assert np.size(base.arm_data(Split.IN_DOMAIN).scores["coherence"]) == 1
    assert base.window(None, at.timestamp()).requests == 0


def test_pick_arms_by_convention() -> None:
    assert pick_arms(None, ["fine_tuned", "base"]) == (["base", "fine_tuned"], "base", "fine_tuned")
    assert pick_arms(None, ["a", "b"]) == (["a", "b"], "a", "b")
    exps = experiments()
    assert pick_arms(exps.experiments[0], ["stray"])[0] == ["base", "fine_tuned", "stray"]


def test_the_stored_stage_state_sets_stage_weights_and_start(db: Database) -> None:
    rows = Rows()
    deploy_dataset(rows, hours=6.0)
    rows.write(db)
    # the admin API stored a change to 70/30 three hours ago: statistics restart there
    save_state(db, "demo", "ab", {"base": 0.7, "fine_tuned": 0.3}, now=NOW - timedelta(hours=3))
    report = build_report(db, experiments(), "demo", now=NOW).to_dict()
    assert report["since"] == (NOW - timedelta(hours=3)).isoformat()
    assert report["arms"]["base"]["requests"] == 200
    assert report["arms"]["base"]["weight"] == pytest.approx(0.7)
    assert report["verdict"]["action"] == "void"  # 50/50 served where 70/30 is stored
    save_state(db, "demo", "promoted", {"base": 0.7, "fine_tuned": 0.3}, now=NOW - timedelta(hours=1))
    promoted = build_report(db, None, "demo", now=NOW).to_dict()
    assert promoted["stage"] == "promoted" and promoted["arms"]["fine_tuned"]["weight"] == 1.0
    everything = build_report(db, experiments(), "demo", now=NOW, from_stage_start=False).to_dict()
    assert everything["since"] is None and everything["stage"] == "ab"
    assert everything["arms"]["base"]["requests"] == 400 and everything["verdict"]["action"] == "deploy"
    # stored but without traffic: a report, not an error
    save_state(db, "fresh", "ab", {"base": 0.5, "fine_tuned": 0.5}, now=NOW)
    assert build_report(db, None, "fresh", now=NOW).arms["base"]["requests"] == 0
