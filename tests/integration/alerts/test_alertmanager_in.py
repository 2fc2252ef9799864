"""``POST /admin/alertmanager`` → outbox → signed delivery to a real receiver; the admin read endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.alerts.sender import Receiver, deliver_due
from service.alerts.state import Evaluation, StateMachine
from service.api import alerts as alerts_api
from service.api.deps import Components
from service.config import AlertRule, AlertsConfig, ReceiverConfig, ReceiverKind, Severity
from service.gateway.auth import KeyChecker
from service.gateway.errors import install_handlers
from service.store.db import Database
from tests.integration.alerts.conftest import SECRET, FakeClock, Hook

ADMIN = "admin-key-for-tests-0123"
AUTH = {"authorization": f"Bearer {ADMIN}"}

WEBHOOK: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity="page"}:{alertname="TunewatchFineTuneSlower"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "oncall-tunewatch",
    "groupLabels": {"alertname": "TunewatchFineTuneSlower"},
    "commonLabels": {"alertname": "TunewatchFineTuneSlower"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "TunewatchFineTuneSlower",
                "experiment": "demo",
                "arm": "fine_tuned",
                "severity": "page",
            },
            "annotations": {
                "summary": "fine-tune p95 is 1.8x the base",
                "description": "p95 1.8 s vs 1.0 s",
                "runbook_url": "https://example.com/docs/runbooks.md#fine-tune-slower",
                "value": "1.8",
            },
            "startsAt": "2026-11-24T11:50:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=x",
            "fingerprint": "1a2b3c4d5e6f7a8b",
        },
        {
            "status": "resolved",
            "labels": {
                "alertname": "TunewatchNegativeFeedbackRising",
                "experiment": "demo",
                "severity": "ticket",
            },
            "annotations": {"summary": "negative feedback back to normal", "value": "not a number"},
            "startsAt": "2026-11-24T10:00:00Z",
            "endsAt": "2026-11-24T11:00:00Z",
            "generatorURL": "",
            "fingerprint": "ffee",
        },
    ],
}


def config(hook: Hook) -> AlertsConfig:
    return AlertsConfig(
        public_url="https://tw.example.com",
        receivers=[
            ReceiverConfig(name="oncall", url=hook.url, secret_env="X", severities=[Severity.PAGE]),
            ReceiverConfig(name="tickets", url=hook.url, secret_env="X", severities=[Severity.TICKET]),
        ],
        rules={"latency_p95_above_control": AlertRule(for_s=0)},
    )


def resolved(hook: Hook) -> dict[str, Receiver]:
    return {n: Receiver(n, ReceiverKind.GENERIC, hook.url, SECRET, None, 5.0) for n in ("oncall", "tickets")}


@pytest.fixture
def client(sqlite_db: Database, hook: Hook) -> Iterator[TestClient]:
    app = FastAPI()
    install_handlers(app)
    app.include_router(alerts_api.router)
    app.state.components = Components(
        settings=cast(Any, None),
        experiments=cast(Any, None),
        table=cast(Any, None),
        recorder=cast(Any, None),
        client_keys=KeyChecker([]),
        admin_keys=KeyChecker([SecretStr(ADMIN)], "admin key"),
        database=sqlite_db,
        extras={"alerts": config(hook)},
    )
    with TestClient(app) as test_client:
        yield test_client


def test_alertmanager_alerts_are_forwarded_signed_in_our_format(
    client: TestClient, sqlite_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    response = client.post("/admin/alertmanager", json=WEBHOOK, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"alerts": 2, "enqueued": 2}

    # the route queues at wall time, so the sender's (and the receiver's) clock moves to wall time
    clock.current = datetime.now(UTC)
    run = deliver_due(sqlite_db, resolved(hook), http_client, clock)
    assert run.delivered == 2
    page, ticket = sorted((orjson.loads(r.body) for r in hook.verified), key=lambda b: b["severity"])
    assert len(hook.verified) == 2
    assert page["source"] == "alertmanager" and page["version"] == "1" and page["status"] == "firing"
    assert (page["alert"], page["experiment"], page["arm"], page["value"]) == (
        "TunewatchFineTuneSlower",
        "demo",
        "fine_tuned",
        1.8,
    )
    assert page["summary"] == "fine-tune p95 is 1.8x the base" and page["description"] == "p95 1.8 s vs 1.0 s"
    assert page["starts_at"] == "2026-11-24T11:50:00Z" and page["ends_at"] is None
    assert page["dedup_key"] == "alertmanager|1a2b3c4d5e6f7a8b"
    assert page["links"]["report"] == "https://tw.example.com/admin/experiments/demo/report"
    assert page["links"]["runbook"] == "https://example.com/docs/runbooks.md#fine-tune-slower"
    assert page["evidence"]["labels"]["alertname"] == "TunewatchFineTuneSlower"
    assert ticket["status"] == "resolved" and ticket["ends_at"] == "2026-11-24T11:00:00Z"
    assert ticket["arm"] is None and ticket["value"] is None

    log = client.get("/admin/alerts/deliveries", headers=AUTH).json()["deliveries"]
    assert sorted((d["target"], d["state"], d["attempts"], d["last_status"]) for d in log) == [
        ("oncall", "delivered", 1, 204),
        ("tickets", "delivered", 1, 204),
    ]
    only = client.get(
        "/admin/alerts/deliveries", params={"target": "oncall", "state": "delivered"}, headers=AUTH
    )
    assert [d["target"] for d in only.json()["deliveries"]] == ["oncall"]


def test_the_admin_key_is_required(client: TestClient) -> None:
    for headers in ({}, {"authorization": "Bearer wrong-key-0123456789"}):
        response = client.post("/admin/alertmanager", json=WEBHOOK, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    assert client.get("/admin/alerts", headers={}).status_code == 401


def test_a_body_that_is_not_alertmanager_v4_is_refused(client: TestClient, sqlite_db: Database) -> None:
    response = client.post("/admin/alertmanager", json={**WEBHOOK, "version": "3"}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert client.get("/admin/alerts/deliveries", headers=AUTH).json() == {"deliveries": []}


def test_current_alert_states_are_listed(
    client: TestClient, sqlite_db: Database, hook: Hook, clock: FakeClock
) -> None:
    StateMachine(sqlite_db, config(hook), clock).evaluate(
        [
            Evaluation("latency_p95_above_control", "demo", "fine_tuned", True, 1.8, 1.0, {"n": 300}),
        ]
    )
    body = client.get("/admin/alerts", headers=AUTH).json()
    [alert] = body["alerts"]
    assert (alert["alert"], alert["state"], alert["value"], alert["severity"]) == (
        "latency_p95_above_control",
        "firing",
        1.8,
        "ticket",
    )
    assert client.get("/admin/alerts", params={"state": "resolved"}, headers=AUTH).json() == {"alerts": []}
    assert client.get("/admin/alerts", params={"state": "bogus"}, headers=AUTH).status_code == 400
