"""Notification bodies: our generic JSON (what the outbox stores), Slack and PagerDuty renderings.

The outbox keeps the generic payload; a Slack or PagerDuty body is rendered from it at send time,
so a secret (the PagerDuty routing key) never reaches the database and one stored row serves any
receiver kind. Generic payload, ``version`` 1::

    {"version": "1", "status": "firing"|"resolved", "source": "tunewatch"|"alertmanager",
     "dedup_key", "alert", "experiment", "arm", "severity", "value", "threshold", "summary",
     "description", "evidence", "starts_at", "ends_at", "links": {"report", "dashboard", ...}}

Times are ISO 8601 UTC (``Z``); ``value``/``threshold`` are numbers or null (never NaN). Pure, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict
from urllib.parse import quote

__all__ = [
    "AlertEvent",
    "GenericPayload",
    "format_time",
    "generic",
    "links",
    "pagerduty",
    "slack",
]

PAYLOAD_VERSION = "1"
_PD_SEVERITY = {"page": "critical", "ticket": "warning"}
_PD_SUMMARY_MAX = 1024  # PagerDuty truncates longer summaries
_SLACK_TEXT_MAX = 2900  # a section's text is limited to 3,000 characters


class GenericPayload(TypedDict):
    version: str
    status: Literal["firing", "resolved"]
    source: str
    dedup_key: str
    alert: str
    experiment: str
    arm: str | None
    severity: str
    value: float | None
    threshold: float | None
    summary: str
    description: str
    evidence: dict[str, Any]
    starts_at: str | None
    ends_at: str | None
    links: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One notification's content before rendering. Times are aware UTC."""

    status: Literal["firing", "resolved"]
    dedup_key: str
    alert: str
    experiment: str
    arm: str | None
    severity: str
    value: float | None
    threshold: float | None
    starts_at: datetime | None
    ends_at: datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None
    description: str | None = None
    source: str = "tunewatch"
    extra_links: dict[str, str | None] = field(default_factory=dict)


def format_time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, seconds precision; None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _where(event: AlertEvent) -> str:
    return f"{event.experiment}/{event.arm}" if event.arm else event.experiment


def _summary(event: AlertEvent) -> str:
    if event.summary:
        return event.summary
    verb = "firing" if event.status == "firing" else "resolved"
    return f"{event.alert} {verb} on {_where(event)}: value {_fmt(_number(event.value))} " \
           f"(threshold {_fmt(_number(event.threshold))})"


def _description(event: AlertEvent) -> str:
    if event.description:
        return event.description
    where = f"experiment {event.experiment!r}" + (f", arm {event.arm!r}" if event.arm else "")
    if event.status == "firing":
        return (f"The {event.alert} detector is active for {where}: it measured {_fmt(_number(event.value))} "
                f"against a threshold of {_fmt(_number(event.threshold))}. "
                "Open the report to compare the arms.")
    last = _fmt(_number(event.value))
    return f"The {event.alert} detector is no longer active for {where} (last value {last})."


def links(experiment: str, public_url: str | None, dashboard_url: str | None) -> dict[str, str | None]:
    """``report`` (this tunewatch's admin report) and ``dashboard`` (Grafana) for ``experiment``."""
    name = quote(experiment, safe="")
    report = None
    if public_url and experiment:
        report = f"{public_url.rstrip('/')}/admin/experiments/{name}/report"
    dashboard = dashboard_url.replace("{experiment}", name) if dashboard_url else None
    return {"report": report, "dashboard": dashboard}


def generic(event: AlertEvent, public_url: str | None = None,
            dashboard_url: str | None = None) -> GenericPayload:
    """The generic payload (the stored form), links built from the configured URLs."""
    all_links = links(event.experiment, public_url, dashboard_url)
    all_links.update(event.extra_links)
    return GenericPayload(
        version=PAYLOAD_VERSION, status=event.status, source=event.source, dedup_key=event.dedup_key,
        alert=event.alert, experiment=event.experiment, arm=event.arm, severity=event.severity,
        value=_number(event.value), threshold=_number(event.threshold), summary=_summary(event),
        description=_description(event), evidence=event.evidence, starts_at=format_time(event.starts_at),
        ends_at=format_time(event.ends_at), links=all_links,
    )


def slack(payload: GenericPayload) -> dict[str, Any]:
    """A Slack incoming-webhook body (``text`` for notifications, ``blocks`` for the message)."""
    firing = payload["status"] == "firing"
    icon = ":rotating_light:" if firing else ":white_check_mark:"
    title = f"{icon} [{payload['status'].upper()}] {payload['summary']}"
    fields = [
        ("Alert", payload["alert"]), ("Experiment", payload["experiment"]), ("Arm", payload["arm"] or "-"),
        ("Severity", payload["severity"]), ("Value", _fmt(payload["value"])),
        ("Threshold", _fmt(payload["threshold"])),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": title[:_SLACK_TEXT_MAX]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": payload["description"][:_SLACK_TEXT_MAX]}},
    ]
    link_text = " | ".join(f"<{url}|{name}>" for name, url in payload["links"].items() if url)
    times = f"since {payload['starts_at'] or '?'}"
    if payload["ends_at"]:
        times += f", ended {payload['ends_at']}"
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": " · ".join(p for p in (link_text, times, payload["source"]) if p)}]})
    return {"text": title[:_SLACK_TEXT_MAX], "blocks": blocks}


def pagerduty(payload: GenericPayload, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: ``trigger`` while firing, ``resolve`` (same dedup key) after."""
    details: dict[str, Any] = {
        "experiment": payload["experiment"], "arm": payload["arm"], "value": payload["value"],
        "threshold": payload["threshold"], "description": payload["description"],
        "evidence": payload["evidence"], "starts_at": payload["starts_at"], "ends_at": payload["ends_at"],
    }
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if payload["status"] == "firing" else "resolve",
        "dedup_key": payload["dedup_key"][:255],
        "client": "tunewatch",
        "payload": {
            "summary": payload["summary"][:_PD_SUMMARY_MAX],
            "source": f"tunewatch/{payload['experiment']}" if payload["experiment"] else "tunewatch",
            "severity": _PD_SEVERITY.get(payload["severity"], "error"),
            "component": payload["experiment"] or None,
            "group": payload["arm"],
            "class": payload["alert"],
            "custom_details": details,
        },
        "links": [{"href": url, "text": name} for name, url in payload["links"].items() if url],
    }
    if payload["starts_at"]:
        event["payload"]["timestamp"] = payload["starts_at"]
    return event
