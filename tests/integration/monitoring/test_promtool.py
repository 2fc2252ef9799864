"""The monitoring configuration against the real tools: promtool and amtool (Debian packages).

``promtool check config`` / ``check rules`` / ``test rules`` and ``amtool check-config`` run on the
repository's files as they are; the tests also hold the rules to the conventions the on-call
engineer relies on (severity, summary, description with the value, a runbook anchor that exists,
a ``for:``), check that every alert has a unit test that fires it and one where it must not, and
parse every Grafana panel's PromQL with promtool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.binaries import load_queries

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "prometheus"
RULES = PROMETHEUS / "rules"
RULE_FILES = [RULES / "tunewatch-recording.yml", RULES / "tunewatch-alerts.yml"]
RULE_TESTS = sorted((RULES / "tests").glob("*.yml"))
ALERTMANAGER = PROMETHEUS / "alertmanager.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: `make system-deps-test` installs Debian's prometheus and "
                    "prometheus-alertmanager packages, which provide it")
    return path


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a tool with a deadline; the output is kept for the assertion message."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load((RULES / "tunewatch-alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alert_tests() -> Iterator[dict[str, Any]]:
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            yield from test.get("alert_rule_test", [])


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the runbook's headings: lower case, punctuation dropped, spaces to dashes."""
    anchors = set()
    for line in RUNBOOKS.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            anchors.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def test_promtool_check_config() -> None:
    result = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_promtool_check_rules() -> None:
    result = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in RULE_FILES:
        count = sum(len(g["rules"]) for g in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"])
        assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    assert RULE_TESTS, "no rule unit tests found"
    result = run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


def test_promtool_test_rules_can_fail(tmp_path: Path) -> None:
    # the same series that make FineTuneLatencyAboveBase fire, with the claim that nothing fires
    source = yaml.safe_load((RULES / "tests" / "experiment-alerts.test.yml").read_text(encoding="utf-8"))
    firing = source["tests"][0]
    firing["alert_rule_test"] = [
        {"alertname": "FineTuneLatencyAboveBase", "eval_time": "5m", "exp_alerts": []},
    ]
    broken = {**source, "rule_files": [str(p) for p in RULE_FILES], "tests": [firing]}
    path = tmp_path / "broken.test.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run(tool("promtool"), "test", "rules", str(path))
    assert result.returncode != 0
    assert "FineTuneLatencyAboveBase" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for case in alert_tests():
        (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {a["alert"] for a in alerts()}
    assert sorted(names - fired) == [], "alerts without a test that makes them fire"
    assert sorted(names - silent) == [], "alerts without a test where they must stay silent"


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: str(r["alert"]))
def test_alert_follows_the_on_call_conventions(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"page", "ticket"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert "$value" in annotations["description"] and "$labels." in annotations["description"]
    # tunewatch's Alertmanager intake reads these as numbers for its signed payload
    assert annotations["value"] == "{{ $value }}"
    assert float(annotations.get("threshold", "0")) >= 0
    assert re.fullmatch(r"\d+[smh]", rule["for"]), "a `for:` keeps one bad scrape from notifying"
    url = annotations["runbook_url"]
    assert url.startswith("docs/runbooks.md#")
    assert url.split("#", 1)[1] in runbook_anchors(), f"{url} has no section in docs/runbooks.md"


def test_the_fine_tune_latency_alert_can_fire_within_two_minutes() -> None:
    # the end-to-end test waits for it: 1m `for` on a 5m window that fills from the first scrapes
    (rule,) = [a for a in alerts() if a["alert"] == "FineTuneLatencyAboveBase"]
    assert rule["for"] == "1m"



def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    # promtool has no parse-only command for PromQL; `check rules` parses each recording rule's expr
    queries = load_queries().panel_queries()
    rules = [{"record": f"dashboard:query_{i}:check", "expr": q.expr} for i, q in enumerate(queries)]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = run(tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_broken_dashboard_query_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    bad = {"record": "dashboard:query:check", "expr": "sum by (arm (rate(tunewatch_requests_total[1m]))"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [bad]}]}), encoding="utf-8")
    assert run(tool("promtool"), "check", "rules", str(path)).returncode != 0


def test_amtool_check_config() -> None:
    result = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("labels", "receivers"), [
    (["severity=page", "alertname=QualityBelowThreshold", "experiment=demo"], "oncall-tunewatch"),
    (["severity=ticket", "alertname=FineTuneLatencyAboveBase", "experiment=demo"], "ticket"),
    # tunewatch cannot page about itself being down: a direct route as well
    (["severity=page", "alertname=TunewatchDown"], "oncall-direct,oncall-tunewatch"),
])
def test_amtool_routes_by_severity(labels: list[str], receivers: str) -> None:
    result = run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                 f"--verify.receivers={receivers}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_keeps_secrets_out_of_its_config() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    (page,) = [r for r in config["receivers"] if r["name"] == "oncall-tunewatch"]
    (hook,) = page["webhook_configs"]
    assert hook["url"] == "http://tunewatch:8000/admin/alertmanager"
    assert set(hook["http_config"]["authorization"]) == {"type", "credentials_file"}
