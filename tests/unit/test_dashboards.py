"""The Grafana dashboards: generated JSON is committed as generated, and every panel has a query.

The generator (``grafana/dashboards.py``) and the query lister (``grafana/queries.py``) are scripts
in the repository, not part of the ``service`` package, so they are loaded from their paths. The
PromQL itself is parsed by promtool in ``tests/integration/monitoring/test_promtool.py`` and run
against a real Prometheus by the end-to-end monitoring test.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD_FILES = ("tunewatch-experiment.json", "tunewatch-service.json")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tunewatch_grafana_{name}", GRAFANA / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


queries = load("queries")


def load_generator() -> ModuleType:
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk (dev) missing")
    return load("dashboards")


def committed(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GRAFANA / "dashboards" / name).read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def test_regenerating_gives_exactly_the_committed_json() -> None:
    generator = load_generator()
    generated = generator.generate()
    assert sorted(generated) == sorted(DASHBOARD_FILES)
    for name, text in generated.items():
        on_disk = (GRAFANA / "dashboards" / name).read_text(encoding="utf-8")
        assert text == on_disk, f"grafana/dashboards/{name} is stale: run `python grafana/dashboards.py`"


def test_the_generator_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    generator = load_generator()
    assert generator.main(["--out", str(tmp_path)]) == 0
    assert generator.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / DASHBOARD_FILES[0]).write_text("{}\n", encoding="utf-8")
    assert generator.main(["--check", "--out", str(tmp_path)]) == 1


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_panel_has_a_prometheus_query(name: str) -> None:
    dashboard = committed(name)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        exprs = [t.get("expr", "").strip() for t in panel.get("targets", [])]
        assert exprs and all(exprs), f"panel {panel['title']!r} has a target without a PromQL expr"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) and all(ref_ids), panel["title"]


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_dashboards_are_provisionable(name: str) -> None:
    dashboard = committed(name)
    assert dashboard["uid"] == name.removesuffix(".json")
    assert "tunewatch" in dashboard["tags"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_the_experiment_dashboard_covers_the_monitoring_table() -> None:
    dashboard = committed("tunewatch-experiment.json")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["experiment"]["type"] == "query"
    text = " ".join(t["expr"] for p in panels(dashboard) for t in p.get("targets", []))
    # one query per topic of the issue: split, errors, latency, TTFT, overhead, quality, OOD,
    # feedback, cost, alerts
    for needle in ("tunewatch_arm_weight", 'code=~"5.."', "tunewatch_request_duration_seconds_bucket",
                   "tunewatch_time_to_first_token_seconds_bucket", "tunewatch_proxy_overhead_seconds_bucket",
                   "tunewatch_quality_score", "tunewatch_out_of_domain", "tunewatch_feedback",
                   "tunewatch_cost_usd_per_request", "ALERTS", "tunewatch_alerts_firing"):
        assert needle in text, needle
    # every experiment query is scoped to the selected experiment
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            assert "$experiment" in target["expr"], (panel["title"], target["expr"])


def test_the_quality_panel_draws_the_threshold() -> None:
    dashboard = committed("tunewatch-experiment.json")
    (panel,) = [p for p in panels(dashboard) if p["title"].startswith("Mean judge score")]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 3.5]
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"


def test_panel_queries_substitute_every_variable() -> None:
    listed = queries.panel_queries()
    expected = sum(len(p.get("targets", [])) for n in DASHBOARD_FILES for p in panels(committed(n)))
    assert len(listed) == expected > 20
    for q in listed:
        assert "$" not in q.expr, q
        assert not re.search(r"\[\s*\]", q.expr), q
    by_title = {q.panel_title: q for q in listed}
    assert by_title["Arm weights"].expr == 'tunewatch_arm_weight{experiment="demo"}'
    assert by_title["Arm weights"].instant


def test_substitute_knows_grafana_forms_and_refuses_unknown_variables() -> None:
    values = {"experiment": "demo", "__rate_interval": "1m"}
    assert queries.substitute('x{e="$experiment"}[$__rate_interval]', values) == 'x{e="demo"}[1m]'
    assert queries.substitute('x{e="${experiment}",f="${experiment:raw}"}', values) == 'x{e="demo",f="demo"}'
    with pytest.raises(KeyError, match="arm"):
        queries.substitute('x{arm="$arm"}', values)
