"""The repository's Alertmanager configuration in a real Alertmanager (Debian's package) on loopback.

The configuration is copied with the receivers' URLs pointed at a local HTTP receiver, the admin
key file replaced by a temporary one, the group waits shortened and the ports chosen free ("ports
rewritten"); routes, grouping and inhibition are the committed ones. Alerts are posted through
Alertmanager's API v2, as Prometheus does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest
import yaml

from tests.support.binaries import free_port, ready
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "test-admin-key-0123456789"


class Receiver:
    """Webhook receiver on 127.0.0.1:0: keeps each notification with its path and authorization."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str | None, dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received.append((self.path, self.headers.get("authorization"), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:  # keep pytest's output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def alerts(self, receiver: str) -> list[tuple[str, str, str | None]]:
        """(alertname, status, authorization) of every alert notified to ``receiver``."""
        notified = [(auth, body) for _, auth, body in list(self.received) if body["receiver"] == receiver]
        return [(a["labels"]["alertname"], a["status"], auth)
                for auth, body in notified for a in body["alerts"]]



def rewritten_config(receiver_url: str, credentials: Path) -> dict[str, Any]:
    text = (ROOT / "prometheus/alertmanager.yml").read_text(encoding="utf-8")
    config: dict[str, Any] = yaml.safe_load(text)
    route = config["route"]
    route.update(group_wait="1s", group_interval="1s")
    for child in route["routes"]:
        child.pop("group_interval", None)
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{receiver_url}/{receiver['name']}"
            if "http_config" in hook:
                hook["http_config"]["authorization"]["credentials_file"] = str(credentials)
    return config


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("Alertmanager is not installed: `make system-deps-test` installs Debian's "
                    "prometheus-alertmanager package")
    receiver = Receiver()
    receiver.thread.start()
    credentials = tmp_path / "admin_key"
    credentials.write_text(TOKEN + "\n", encoding="utf-8")
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(rewritten_config(receiver.url, credentials)), encoding="utf-8")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or ready(url), timeout_s=30, what="Alertmanager ready")
        assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
        yield url, receiver
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        receiver.server.shutdown()
        receiver.server.server_close()



def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    now = datetime.now(UTC)
    body = [{"labels": labels, "annotations": {"summary": labels["alertname"]},
             "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}
            for labels in alerts]
    request = Request(f"{url}/api/v2/alerts", data=json.dumps(body).encode(), method="POST",
                      headers={"content-type": "application/json"})
    with urlopen(request, timeout=5) as response:
        assert response.status == 200


def status(url: str) -> dict[str, dict[str, Any]]:
    """alertname/experiment -> the alert's status as Alertmanager reports it."""
    with urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        alerts = json.loads(response.read())
    return {f"{a['labels']['alertname']}/{a['labels'].get('experiment', '-')}": a["status"] for a in alerts}


def inhibited(url: str, key: str, count: int) -> dict[str, dict[str, Any]]:
    """Every alert's status once ``count`` alerts are known and ``key`` is inhibited, else {}."""
    s = status(url)
    return s if len(s) == count and s.get(key, {}).get("inhibitedBy") else {}


QUALITY = {"alertname": "QualityBelowThreshold", "severity": "page", "job": "tunewatch",
           "experiment": "demo", "arm": "fine_tuned"}
LATENCY = {"alertname": "FineTuneLatencyAboveBase", "severity": "ticket", "job": "tunewatch",
           "experiment": "demo", "arm": "fine_tuned"}


Running = tuple[str, Receiver]


def test_pages_and_tickets_reach_their_receivers_with_the_admin_key(alertmanager: Running) -> None:
    url, receiver = alertmanager
    post_alerts(url, [QUALITY, LATENCY])
    wait_for(lambda: receiver.alerts("oncall-tunewatch") and receiver.alerts("ticket"), timeout_s=30,
             what="a page and a ticket")
    assert receiver.alerts("oncall-tunewatch")[0] == ("QualityBelowThreshold", "firing", f"Bearer {TOKEN}")
    assert receiver.alerts("ticket")[0] == ("FineTuneLatencyAboveBase", "firing", f"Bearer {TOKEN}")
    assert {path for path, _, _ in receiver.received} == {"/oncall-tunewatch", "/ticket"}


def test_tunewatch_down_silences_the_experiment_alerts_it_causes(alertmanager: Running) -> None:
    url, receiver = alertmanager
    down = {"alertname": "TunewatchDown", "severity": "page", "job": "tunewatch",
            "instance": "tunewatch:8000"}
    other_job = {**QUALITY, "job": "tunewatch-eu", "experiment": "eu"}
    post_alerts(url, [down, QUALITY, LATENCY, other_job])

    s = wait_for(lambda: inhibited(url, "QualityBelowThreshold/demo", count=4), timeout_s=30,
                 what="the inhibition")
    assert s["QualityBelowThreshold/demo"]["state"] == "suppressed"
    assert s["FineTuneLatencyAboveBase/demo"]["inhibitedBy"]
    # another job's alert is not covered by this job's outage
    assert s["QualityBelowThreshold/eu"]["state"] == "active"
    assert s["TunewatchDown/-"]["state"] == "active"

    # the outage goes to on-call twice: through tunewatch and directly (tunewatch may not forward it)
    wait_for(lambda: receiver.alerts("oncall-direct"), timeout_s=30, what="the direct page")
    page = ("QualityBelowThreshold", "firing", f"Bearer {TOKEN}")
    wait_for(lambda: page in receiver.alerts("oncall-tunewatch"), timeout_s=30, what="the other job's page")
    notified = {name for name, _, _ in receiver.alerts("oncall-tunewatch") + receiver.alerts("ticket")}
    assert "FineTuneLatencyAboveBase" not in notified
    assert [b["groupLabels"] for _, _, b in receiver.received if b["receiver"] == "oncall-direct"] == [
        {"alertname": "TunewatchDown"}
    ]


def test_an_arm_failing_silences_its_latency_and_quality_alerts(alertmanager: Running) -> None:
    url, _ = alertmanager
    errors = {"alertname": "TunewatchHighErrorRate", "severity": "page", "job": "tunewatch",
              "experiment": "demo", "arm": "fine_tuned"}
    elsewhere = {**LATENCY, "experiment": "other"}
    post_alerts(url, [errors, QUALITY, LATENCY, elsewhere])
    s = wait_for(lambda: inhibited(url, "QualityBelowThreshold/demo", count=4), timeout_s=30,
                 what="the inhibition")
    assert s["FineTuneLatencyAboveBase/demo"]["state"] == "suppressed"
    assert s["FineTuneLatencyAboveBase/other"]["state"] == "active"
