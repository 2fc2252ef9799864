"""The repository's Prometheus configuration, rules and dashboard queries in a real Prometheus.

Prometheus (Debian's package) runs on loopback with ``prometheus/prometheus.yml`` rewritten for a
test: the scrape target is ``metrics_exporter`` (tunewatch's real metrics registry with synthetic
traffic, the fine-tune three times slower than the base), intervals of 1s, the rules' ``for:``
shortened to 2s, no Alertmanager. The end-to-end test with the service itself and Alertmanager is
the lead's; this one pins the monitoring files to the metric contract without the service.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest
import yaml

from tests.support.binaries import free_port, load_queries, ready, running
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow



def rewritten_config(target: str, directory: Path, alertmanager: str | None = None) -> Path:
    """The repo's config scraping only ``target`` every 1s, ``for:`` shortened to 2s, written to
    ``directory``; alerts go to ``alertmanager`` (``host:port``) if given, else nowhere."""
    config = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    (tunewatch,) = [job for job in config["scrape_configs"] if job["job_name"] == "tunewatch"]
    tunewatch["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = [tunewatch]
    if alertmanager is None:
        config.pop("alerting")
    else:
        (manager,) = config["alerting"]["alertmanagers"]
        manager["static_configs"] = [{"targets": [alertmanager]}]
    (directory / "rules").mkdir()
    for rule_file in config["rule_files"]:
        text = (ROOT / "prometheus" / rule_file).read_text(encoding="utf-8")
        (directory / rule_file).write_text(re.sub(r"for: \d+[smh]", "for: 2s", text), encoding="utf-8")
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path



@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Prometheus is not installed: `make system-deps-test` installs Debian's package")
    directory = tmp_path_factory.mktemp("prometheus")
    exporter_log = directory / "exporter.log"
    exporter = [sys.executable, "-m", "tests.integration.monitoring.metrics_exporter", "120"]
    with running(exporter, exporter_log) as child:
        # the exporter prints its address first
        def printed() -> re.Match[str] | bool | None:
            return child.poll() is not None or re.search(r"127\.0\.0\.1:\d+", exporter_log.read_text())

        address = wait_for(printed, timeout_s=30, what="the exporter's address")
        assert child.poll() is None and isinstance(address, re.Match), exporter_log.read_text()
        config = rewritten_config(address.group(0), directory)
        port = free_port()
        args = [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}"]
        with running(args, directory / "prometheus.log") as proc:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: proc.poll() is not None or ready(url), timeout_s=30, what="Prometheus ready")
            assert proc.poll() is None, (directory / "prometheus.log").read_text()
            yield url



def api(url: str, path: str, **params: str) -> Any:
    with urlopen(f"{url}/api/v1/{path}?{urlencode(params)}", timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]



def test_every_rule_evaluates_without_error(prometheus: str) -> None:
    def evaluated() -> list[dict[str, Any]]:
        rules = [r for g in api(prometheus, "rules")["groups"] for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else []

    rules = wait_for(evaluated, timeout_s=30, what="every rule evaluated once")
    files = [ROOT / "prometheus/rules" / f"tunewatch-{kind}.yml" for kind in ("recording", "alerts")]
    groups = [g for f in files for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]]
    defined = sum(len(g["rules"]) for g in groups)
    assert len(rules) == defined
    assert [r["name"] for r in rules if r["health"] != "ok"] == []


def test_every_dashboard_query_returns_data(prometheus: str) -> None:
    queries = load_queries().panel_queries()

    def empty() -> list[str]:
        return [f"{q.dashboard} / {q.panel_title} / {q.ref_id}: {q.expr}"
                for q in queries if not api(prometheus, "query", query=q.expr)["result"]]

    last: list[str] = []

    def all_filled() -> bool:
        nonlocal last
        last = empty()
        return not last

    try:
        wait_for(all_filled, timeout_s=60, interval_s=1.0, what="every dashboard query to return data")
    except AssertionError:
        pytest.fail("queries without data:\n" + "\n".join(last))


def test_the_slow_fine_tune_and_the_quality_detector_fire(prometheus: str) -> None:
    def firing() -> set[str]:
        alerts = api(prometheus, "alerts")["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        return names if {"FineTuneLatencyAboveBase", "QualityBelowThreshold"} <= names else set()

    names = wait_for(firing, timeout_s=60, interval_s=1.0, what="the latency and quality alerts")
    # the base is healthy, nothing else is wrong
    assert names == {"FineTuneLatencyAboveBase", "QualityBelowThreshold"}
    alerts = api(prometheus, "alerts")["alerts"]
    (latency,) = [a for a in alerts if a["labels"]["alertname"] == "FineTuneLatencyAboveBase"]
    assert latency["labels"]["arm"] == "fine_tuned"
    assert 2.0 < float(latency["value"]) < 4.5  # 0.9 s against 0.3 s, through histogram buckets
