"""lint-dataset, import-reference and ood-score as a user runs them: exit codes and output."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli._app import COMMAND_MODULES, app
from service.drift.references import load_references
from service.store.db import Database

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ood"
LINT = Path(__file__).resolve().parents[1] / "drift" / "fixtures"
runner = CliRunner()
for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def test_import_reference_stores_a_calibrated_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'tw.db'}"
    monkeypatch.setenv("TUNEWATCH_DATABASE_URL", url)
    result = runner.invoke(app, ["import-reference", "--experiment", "demo", str(FIXTURES / "reference.tsv"),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # logs go to stderr
    stored = load_references(Database(url))["demo"]
    assert stored.threshold == pytest.approx(summary["threshold"]) and stored.percentile == 95.0
    missing = runner.invoke(app, ["import-reference", "--experiment", "demo", str(tmp_path / "nope.tsv")])
    assert missing.exit_code == 2 and "nope.tsv" in missing.output


def test_ood_score_prints_one_json_object_per_line(tmp_path: Path) -> None:
    queries = tmp_path / "q.txt"
    queries.write_text("Does Renters Insurance Cover Theft?\nplay some jazz in the kitchen\n", encoding="utf-8")
    result = runner.invoke(app, ["ood-score", "--reference", str(FIXTURES / "reference.tsv"), "--input", str(queries)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["out_of_domain"] for r in rows] == [False, True]
    assert set(rows[0]) == {"text", "score", "out_of_domain"} and rows[1]["score"] > rows[0]["score"]


def test_lint_dataset_exits_1_on_errors_and_0_on_a_good_file() -> None:
    assert runner.invoke(app, ["lint-dataset", str(LINT / "bad.jsonl")]).exit_code == 1
    good = runner.invoke(app, ["lint-dataset", str(LINT / "good.jsonl"), "--format", "json"])
    assert good.exit_code == 0, good.output
    assert isinstance(json.loads(good.stdout), dict)
