"""A real Alertmanager (Debian's package) posts to tunewatch's ``/admin/alertmanager``; the alert
reaches a real receiver signed, in our format, and passes the documented verification.

tunewatch's alerts router is served by tunewatch's HTTP server on a socket bound to 127.0.0.1:0; Alertmanager gets
a minimal configuration (one route, ``group_wait: 1s``) whose webhook carries the admin key as a
Bearer token read from a file, as ``prometheus/alertmanager.yml`` does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.request import Request, urlopen

import httpx
import orjson
import pytest
import yaml
from fastapi import FastAPI
from pydantic import SecretStr

from service.alerts import outbox
from service.alerts.sender import Receiver, deliver_due
from service.api import alerts as alerts_api
from service.api.deps import Components
from service.config import AlertsConfig, ReceiverConfig, ReceiverKind
from service.gateway.auth import KeyChecker
from service.gateway.errors import install_handlers
from service.h1.server import Server
from service.runner import bind
from service.store.db import Database
from tests.integration.alerts.conftest import SECRET, FakeClock, Hook
from tests.support.binaries import free_port, ready
from tests.support.wait import wait_for

ADMIN = "admin-key-for-tests-0123"




@pytest.fixture
def tunewatch_url(sqlite_db: Database, hook: Hook) -> Iterator[str]:
    app = FastAPI()
    install_handlers(app)
    app.include_router(alerts_api.router)
    config = AlertsConfig(receivers=[ReceiverConfig(name="oncall", url=hook.url, secret_env="X")])
    app.state.components = Components(
        settings=cast(Any, None),
        experiments=cast(Any, None),
        table=cast(Any, None),
        recorder=cast(Any, None),
        client_keys=KeyChecker([]),
        admin_keys=KeyChecker([SecretStr(ADMIN)], "admin key"),
        database=sqlite_db,
        extras={"alerts": config},
    )
    sock = bind("127.0.0.1", 0)
    server = Server(app)
    thread = threading.Thread(target=server.run, args=([sock],), daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout_s=15, what="the alerts API to start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def alertmanager(tmp_path: Path, tunewatch_url: str) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip(
            "Alertmanager is not installed: `make system-deps-test` installs Debian's "
            "prometheus-alertmanager package"
        )
    credentials = tmp_path / "admin_key"
    credentials.write_text(ADMIN + "\n", encoding="utf-8")
    config = {
        "route": {
            "receiver": "tunewatch",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "tunewatch",
                "webhook_configs": [
                    {
                        "url": f"{tunewatch_url}/admin/alertmanager",
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(credentials)}
                        },
                    }
                ],
            }
        ],
    }
    config_file = tmp_path / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or ready(url), timeout_s=30, what="Alertmanager ready")
        assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_alertmanager_to_tunewatch_to_a_verifying_receiver(
    alertmanager: str, sqlite_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    now = datetime.now(UTC)
    labels = {
        "alertname": "FineTuneLatencyAboveBase",
        "severity": "ticket",
        "experiment": "demo",
        "arm": "fine_tuned",
    }
    body = [
        {
            "labels": labels,
            "annotations": {"summary": "fine-tune p95 above base", "value": "1.7"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=10)).isoformat(),
        }
    ]
    request = Request(
        f"{alertmanager}/api/v2/alerts",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urlopen(request, timeout=5) as response:
        assert response.status == 200

    queued = wait_for(
        lambda: outbox.list_deliveries(sqlite_db),
        timeout_s=30,
        what="Alertmanager's notification in the outbox",
    )
    assert queued[0].target == "oncall" and queued[0].payload["source"] == "alertmanager"

    clock.current = datetime.now(UTC)  # the route queued at wall time
    receivers = {"oncall": Receiver("oncall", ReceiverKind.GENERIC, hook.url, SECRET, None, 5.0)}
    assert deliver_due(sqlite_db, receivers, http_client, clock).delivered >= 1
    got = orjson.loads(hook.verified[0].body)
    assert (got["alert"], got["status"], got["experiment"], got["arm"], got["severity"], got["value"]) == (
        "FineTuneLatencyAboveBase",
        "firing",
        "demo",
        "fine_tuned",
        "ticket",
        1.7,
    )
    assert got["summary"] == "fine-tune p95 above base" and got["evidence"]["fingerprint"]
    assert got["starts_at"] == now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
