"""``tunewatch eval``'s logic: a dataset through both simulated arms, scored by the simulated judge."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import ExperimentsFile
from service.quality.offline import DatasetError, eval_command, load_dataset, run_eval
from service.simulator import SimConfig, start_in_thread
from service.store.db import Database
from service.store.evals import load_eval_scores
from tests.integration.quality.conftest import IN_DOMAIN, quality_for
from tests.support.proxy import demo_experiments

SYSTEM = {"role": "system", "content": "You are Atlas Insurance's claims assistant."}


@pytest.fixture(scope="module")
def arms() -> Iterator[ExperimentsFile]:
    config = SimConfig(seed=5, time_scale=0.0)
    with start_in_thread("base", config) as base, start_in_thread("fine_tuned", config) as ft:
        yield demo_experiments(base.url, ft.url)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "eval.jsonl"
    lines = [
        {
            "messages": [
                SYSTEM,
                {"role": "user", "content": q},
                {"role": "assistant", "content": "reference answer"},
            ]
        }
        for q in IN_DOMAIN
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_eval_compares_both_arms_on_every_metric(
    arms: ExperimentsFile, judge_url: str, dataset: Path
) -> None:
    seen: list[tuple[str, int, int]] = []
    report = run_eval(arms, "demo", quality_for(judge_url), dataset, progress=lambda *a: seen.append(a))
    rows = {r["metric"]: r for r in report.rows()}
    assert list(rows) == [
        "relevance",
        "coherence",
        "fluency",
        "tone",
        "cost_per_request_usd",
        "latency_p95_s",
    ]
    assert rows["tone"]["fine_tuned"] > rows["tone"]["base"]
    assert rows["tone"]["improvement_pct"] > 0
    assert rows["cost_per_request_usd"]["fine_tuned"] < rows["cost_per_request_usd"]["base"]
    for row in rows.values():
        assert row["n_base"] == row["n_fine_tuned"] == len(IN_DOMAIN)
        low, high = row["base_ci"]
        assert low is None or low <= row["base"] <= (high if high is not None else float("inf"))
    assert report.errors == {"base": 0, "fine_tuned": 0}
    assert not report.worse
    assert {s for s, _, _ in seen} == {"base", "fine_tuned", "judge"}
    assert seen[-1][1] == seen[-1][2]  # the judge stage finished


def test_eval_json_output_and_the_ci_gate(arms: ExperimentsFile, judge_url: str, dataset: Path) -> None:
    out = io.StringIO()
    assert eval_command(arms, "demo", quality_for(judge_url), dataset, fmt="json", out=out) == 0
    data = json.loads(out.getvalue())
    assert data["gate"] == {"margin": 0.0, "worse": False, "reasons": []}
    assert {r["metric"] for r in data["metrics"]} >= {"relevance", "tone", "latency_p95_s"}
    # Swap the arms: now the "fine-tune" is the base model, and the gate fails.
    swapped = arms.model_copy(
        update={
            "experiments": [
                arms.experiments[0].model_copy(update={"arms": list(reversed(arms.experiments[0].arms))})
            ]
        }
    )
    table = io.StringIO()
    assert eval_command(swapped, "demo", quality_for(judge_url), dataset, out=table) == 1
    assert "Tone compliance" in table.getvalue() and "worse: tone" in table.getvalue()


def test_bad_datasets_are_refused_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad.jsonl:2"):
        load_dataset(bad)
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(tmp_path / "missing.jsonl")
    rows = load_dataset(bad, limit=1)
    assert rows[0].query == "hi" and rows[0].messages == [{"role": "user", "content": "hi"}]


def test_eval_json_matches_the_stored_scores(
    arms: ExperimentsFile, judge_url: str, dataset: Path, migrated_db: Database
) -> None:
    out = io.StringIO()
    assert eval_command(arms, "demo", quality_for(judge_url), dataset, fmt="json", out=out,
                        database=migrated_db) == 0
    data = json.loads(out.getvalue())
    stored = load_eval_scores(migrated_db, data["run_id"])
    assert set(stored) == {"base", "fine_tuned"}
    for arm, by_evaluator in data["scores"].items():
        for evaluator, summary in by_evaluator.items():
            values = stored[arm][evaluator]
            assert summary["n"] == len(values)
            assert summary["mean"] == pytest.approx(sum(values) / len(values))
    # the table's means are the same numbers
    tone = next(m for m in data["metrics"] if m["metric"] == "tone")
    assert tone["base"] == pytest.approx(data["scores"]["base"]["tone"]["mean"])
    assert tone["fine_tuned"] == pytest.approx(data["scores"]["fine_tuned"]["tone"]["mean"])
