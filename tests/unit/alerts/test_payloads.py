"""Payload formats: generic JSON, Slack incoming webhook, PagerDuty Events v2; rendering per receiver."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import orjson
import pytest

from service.alerts import payloads
from service.alerts.sender import Receiver, render
from service.config import ReceiverKind

STARTED = datetime(2026, 11, 24, 11, 58, 7, 123_000, tzinfo=UTC)
GENERIC_KEYS = {
    "version",
    "status",
    "source",
    "dedup_key",
    "alert",
    "experiment",
    "arm",
    "severity",
    "value",
    "threshold",
    "summary",
    "description",
    "evidence",
    "starts_at",
    "ends_at",
    "links",
}


def event(status: str = "firing", **changes: object) -> payloads.AlertEvent:
    base: dict[str, object] = dict(
        status=status,
        dedup_key="latency_p95_above_control|demo|fine_tuned",
        alert="latency_p95_above_control",
        experiment="demo",
        arm="fine_tuned",
        severity="page",
        value=1.42,
        threshold=1.0,
        starts_at=STARTED,
        ends_at=datetime(2026, 11, 24, 12, 30, tzinfo=UTC) if status == "resolved" else None,
        evidence={"ratio_ci_low": 1.21},
    )
    base.update(changes)
    return payloads.AlertEvent(**base)  # type: ignore[arg-type]


def test_generic_payload_has_the_documented_fields() -> None:
    body = payloads.generic(
        event(), "https://tw.example.com/", "https://g.example.com/d/x?var-experiment={experiment}"
    )
    assert set(body) == GENERIC_KEYS
    assert body["version"] == "1" and body["status"] == "firing" and body["source"] == "tunewatch"
    assert body["starts_at"] == "2026-11-24T11:58:07Z" and body["ends_at"] is None
    assert body["links"] == {
        "report": "https://tw.example.com/admin/experiments/demo/report",
        "dashboard": "https://g.example.com/d/x?var-experiment=demo",
    }
    assert "1.42" in body["summary"] and "demo/fine_tuned" in body["summary"]
    orjson.dumps(body)  # JSON-safe


def test_generic_payload_turns_non_finite_numbers_into_null_and_keeps_given_texts() -> None:
    body = payloads.generic(event(value=math.nan, threshold=math.inf, summary="S", description="D"))
    assert body["value"] is None and body["threshold"] is None
    assert (body["summary"], body["description"]) == ("S", "D")
    assert body["links"] == {"report": None, "dashboard": None}


def test_slack_message_shape() -> None:
    message = payloads.slack(payloads.generic(event(), "https://tw.example.com"))
    assert set(message) == {"text", "blocks"}
    assert message["text"].startswith(":rotating_light: [FIRING]")
    assert [b["type"] for b in message["blocks"]] == ["section", "section", "section", "context"]
    fields = message["blocks"][1]["fields"]
    assert all(f["type"] == "mrkdwn" for f in fields) and "*Experiment*\ndemo" in [f["text"] for f in fields]
    assert (
        "<https://tw.example.com/admin/experiments/demo/report|report>"
        in message["blocks"][3]["elements"][0]["text"]
    )
    resolved = payloads.slack(payloads.generic(event("resolved")))
    assert resolved["text"].startswith(":white_check_mark: [RESOLVED]")


def test_slack_texts_stay_under_the_block_limit() -> None:
    message = payloads.slack(payloads.generic(event(summary="s" * 5000, description="d" * 5000)))
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if "text" in b)


@pytest.mark.parametrize(("status", "action"), [("firing", "trigger"), ("resolved", "resolve")])
def test_pagerduty_event_shape(status: str, action: str) -> None:
    pd = payloads.pagerduty(payloads.generic(event(status), "https://tw.example.com"), "R0UTING")
    assert pd["routing_key"] == "R0UTING" and pd["event_action"] == action
    assert pd["dedup_key"] == "latency_p95_above_control|demo|fine_tuned"
    assert set(pd["payload"]) >= {"summary", "source", "severity", "custom_details"}
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"] == "tunewatch/demo"
    assert pd["payload"]["custom_details"]["evidence"] == {"ratio_ci_low": 1.21}
    assert pd["links"] == [{"href": "https://tw.example.com/admin/experiments/demo/report", "text": "report"}]


def test_pagerduty_severity_and_summary_limits() -> None:
    pd = payloads.pagerduty(payloads.generic(event(severity="ticket", summary="x" * 2000)), "k")
    assert pd["payload"]["severity"] == "warning" and len(pd["payload"]["summary"]) == 1024
    assert payloads.pagerduty(payloads.generic(event(severity="odd")), "k")["payload"]["severity"] == "error"


@pytest.mark.parametrize("kind", list(ReceiverKind))
def test_render_per_receiver_kind_from_the_stored_payload(kind: ReceiverKind) -> None:
    stored = orjson.loads(orjson.dumps(payloads.generic(event())))  # what the outbox row holds
    receiver = Receiver(
        name="r", kind=kind, url="http://127.0.0.1:9", secret=b"s", routing_key="RK", timeout_s=1
    )
    body = orjson.loads(render(receiver, stored))
    expected = {
        ReceiverKind.GENERIC: GENERIC_KEYS,
        ReceiverKind.SLACK: {"text", "blocks"},
        ReceiverKind.PAGERDUTY: {"routing_key", "event_action", "dedup_key", "client", "payload", "links"},
    }
    assert set(body) == expected[kind]
    assert "RK" not in repr(receiver) and "127.0.0.1" not in repr(receiver)
