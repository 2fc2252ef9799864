"""The report's three faces: the rich table, the self-contained HTML, the CLI and the admin route."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from rich.console import Console
from typer.testing import CliRunner

import service.cli.report  # noqa: F401  (registers `report` on the app)
from service.api import reports
from service.api.deps import Components
from service.cli._app import app
from service.config import Settings
from service.gateway.arms import RoutingTable
from service.gateway.auth import KeyChecker
from service.gateway.errors import install_handlers
from service.quality.report import Report, build_report
from service.quality.report_html import render_html
from service.quality.report_table import render_table
from service.store.db import Database
from service.store.migrate import upgrade
from tests.unit.quality.report_rows import NOW, Rows, deploy_dataset
from tests.unit.quality.test_report import experiments

runner = CliRunner()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'report.db'}"
    upgrade(url)
    db = Database(url)
    rows = Rows()
    deploy_dataset(rows)
    rows.write(db)
    db.dispose()
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def report(db: Database) -> Report:
    return build_report(db, experiments(), "demo", now=NOW, job_cost_usd=300.0)


def test_the_table_shows_the_comparison_verdict_and_payback(report: Report) -> None:
    console = Console(record=True, width=160)
    render_table(report, console)
    text = console.export_text()
    for needle in ("Relevance", "p95 latency", "Cost per request", "base", "fine_tuned", "Verdict: DEPLOY",
                   "pays back in 18.7 days", "+25.3%"):  # fmt: skip
        assert needle in text, needle


def test_the_html_is_self_contained_with_one_svg_per_chart(report: Report) -> None:
    html = render_html(report)
    assert html.startswith("<!DOCTYPE html>")
    assert 'id="comparison"' in html and 'id="verdict"' in html and "deploy" in html
    charts = re.findall(r'<svg class="chart" data-chart="([^"]+)"', html)
    assert charts == ["cost", "payback", "scores-coherence", "scores-relevance", "latency", "ood-over-time",
                      "quality-over-time"]  # fmt: skip
    # nothing to fetch: no script, no external stylesheet, image or font
    assert "<script" not in html and "<link" not in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html) and "url(" not in html


def test_the_html_escapes_what_it_shows(db: Database) -> None:
    rows = Rows(experiment="<b>x</b>")
    deploy_dataset(rows, n=40)
    rows.write(db)
    html = render_html(build_report(db, None, "<b>x</b>", now=NOW))
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def _env(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("TUNEWATCH_DATABASE_URL", url)
    monkeypatch.delenv("TUNEWATCH_EXPERIMENTS_FILE", raising=False)


def test_cli_json_follows_the_contract(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, db_url)
    result = runner.invoke(app, ["report", "--experiment", "demo", "--format", "json", "--job-cost", "300"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"experiment", "stage", "arms", "comparison", "verdict"} <= set(data)
    assert data["stage"] == "unknown"  # no --config
    assert data["verdict"]["action"] == "deploy" and data["cost"]["job_cost_usd"] == 300.0


def test_cli_writes_html_and_table_files(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _env(monkeypatch, db_url)
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "-e", "demo", "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").count("<svg") == 6  # no job cost: no payback chart
    table = tmp_path / "r.txt"
    assert runner.invoke(app, ["report", "-e", "demo", "--out", str(table)]).exit_code == 0
    assert "Verdict: DEPLOY" in table.read_text() and "Relevance" in table.read_text()


def test_cli_with_a_config_uses_its_stage(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _env(monkeypatch, db_url)
    cfg = tmp_path / "experiments.yaml"
    cfg.write_text(json.dumps(experiments(stage="canary").model_dump(mode="json")))  # JSON is YAML
    result = runner.invoke(app, ["report", "-e", "demo", "-f", "json", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stage"] == "canary" and data["srm"]["active"]  # 50/50 observed, 95/5 expected


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["report", "-e", "nope"], 1, "No experiment named 'nope'"),
        (["report", "-e", "demo", "--since", "yesterday"], 2, "--since"),
        (["report", "-e", "demo", "--format", "pdf"], 2, "pdf"),
        (["report", "-e", "demo", "--job-cost", "-1"], 2, "job-cost"),
        (["report"], 2, "experiment"),
    ],
)
def test_cli_bad_input(
    db_url: str, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, message: str
) -> None:
    _env(monkeypatch, db_url)
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_cli_without_a_database_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _env(monkeypatch, f"sqlite:///{tmp_path / 'missing.db'}")
    result = runner.invoke(app, ["report", "-e", "demo"])
    assert result.exit_code == 1 and "tunewatch migrate" in result.output
    assert not (tmp_path / "missing.db").exists()


def test_cli_help_has_examples() -> None:
    result = runner.invoke(app, ["report", "--help"])
    assert result.exit_code == 0
    assert "tunewatch report -e demo" in result.output and "--job-cost" in result.output


def _client(db: Database, job_cost_usd: float | None = None) -> TestClient:
    exps = experiments()
    if job_cost_usd is not None:  # the experiment's own fine_tuning_job_cost_usd, as in the file
        exps = exps.model_copy(update={"experiments": [
            e.model_copy(update={"fine_tuning_job_cost_usd": job_cost_usd}) for e in exps.experiments]})
    api = FastAPI()
    install_handlers(api)
    api.include_router(reports.router)
    api.state.components = Components(
        settings=Settings(), experiments=exps, table=RoutingTable(exps.experiments),
        recorder=cast(Any, None), client_keys=KeyChecker([]), admin_keys=KeyChecker([SecretStr("adm-key")]),
        database=db,
    )  # fmt: skip
    return TestClient(api)


def test_admin_route_serves_json_and_html(db: Database) -> None:
    client = _client(db, job_cost_usd=300.0)
    headers = {"Authorization": "Bearer adm-key"}
    r = client.get("/admin/experiments/demo/report", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["stage"] == "ab" and body["verdict"]["action"] == "deploy"
    # the route's window ends at the wall clock, so only the job cost is known here
    assert body["cost"]["job_cost_usd"] == 300.0 and body["cost"]["payback_days"] > 0
    html = client.get("/admin/experiments/demo/report?format=html", headers=headers)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.text.count('<svg class="chart"') == 7
    since = client.get("/admin/experiments/demo/report?since=2026-11-24T09:00:00", headers=headers).json()
    assert since["arms"]["base"]["requests"] == 200
    assert client.get("/admin/experiments/nope/report", headers=headers).status_code == 404
    assert client.get("/admin/experiments/demo/report?format=pdf", headers=headers).status_code == 400
    assert client.get("/admin/experiments/demo/report").status_code == 401


def test_an_experiment_without_data_still_renders(db: Database) -> None:
    report = build_report(db, experiments(name="quiet"), "quiet", now=NOW)
    html = render_html(report)
    assert (
        "keep collecting" in html and html.count('<svg class="chart"') == 3
    )  # latency and the two over time
    console = Console(record=True, width=120)
    render_table(report, console)
    assert "not enough data" in console.export_text()
