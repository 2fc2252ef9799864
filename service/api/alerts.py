"""``/admin/alertmanager`` (Alertmanager in), ``/admin/alerts`` and ``/admin/alerts/deliveries`` (admin key).

Alertmanager's webhook (payload version 4) is turned into our generic payload, one delivery per
alert per receiver that takes its ``severity`` label, queued in the outbox and sent signed by the
``deliver webhooks`` job: on-call verifies one format, whichever side raised the alert.
Alertmanager treats any 2xx as delivered, so the request returns once the rows are committed.

Routes doing database work are plain ``def``: FastAPI runs them in its threadpool.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from service.alerts import outbox, payloads
from service.alerts.state import list_alerts
from service.api.deps import Components, admin_key, components
from service.config import AlertsConfig
from service.errors import InvalidRequestError
from service.store.db import Database
from service.store.models import AlertState, DeliveryState

__all__ = ["AlertmanagerAlert", "AlertmanagerWebhook", "router", "to_event"]

router = APIRouter(prefix="/admin", dependencies=[Depends(admin_key)])

#: Alertmanager writes this zero time as ``endsAt`` of an alert that is still firing
_UNSET_YEAR = 1970


class _Lenient(BaseModel):
    # Alertmanager's format, not ours: newer releases add fields, which must not break the intake
    model_config = ConfigDict(extra="ignore")


class AlertmanagerAlert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None  # Alertmanager's field names
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str = ""


class AlertmanagerWebhook(_Lenient):
    """Alertmanager's webhook body, version 4 (``docs`` of ``webhook_config``)."""

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    externalURL: str | None = None
    alerts: list[AlertmanagerAlert] = Field(max_length=1000)


def _database(comps: Components) -> Database:
    if comps.database is None:
        raise InvalidRequestError("alerts need a database: this instance records nothing.")
    return comps.database


def _config(comps: Components) -> AlertsConfig:
    found = getattr(comps.experiments, "alerts", None) or comps.extras.get("alerts")
    if not isinstance(found, AlertsConfig):
        raise InvalidRequestError("alerts are not configured: add an `alerts` section with `receivers` "
                                  "to the experiments file.")
    return found


def _time(value: datetime | None) -> datetime | None:
    if value is None or value.year <= _UNSET_YEAR:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def to_event(alert: AlertmanagerAlert, body: AlertmanagerWebhook) -> payloads.AlertEvent:
    """Our event for one Alertmanager alert (``source: "alertmanager"``); labels and annotations
    kept whole in ``evidence``, the annotation ``value``/``threshold`` read as numbers when they are."""
    labels, notes = alert.labels, alert.annotations
    fingerprint = alert.fingerprint or hashlib.sha256(
        orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    evidence: dict[str, Any] = {
        "labels": labels, "annotations": notes, "fingerprint": fingerprint, "group_key": body.groupKey,
        "receiver": body.receiver, "generator_url": alert.generatorURL, "external_url": body.externalURL,
    }
    return payloads.AlertEvent(
        status=alert.status, dedup_key=f"alertmanager|{fingerprint}",
        alert=labels.get("alertname", "unnamed"), experiment=labels.get("experiment", ""),
        arm=labels.get("arm"),
        severity=labels.get("severity", "unknown"), value=_number(notes.get("value")),
        threshold=_number(notes.get("threshold")), starts_at=_time(alert.startsAt),
        ends_at=_time(alert.endsAt) if alert.status == "resolved" else None, evidence=evidence,
        summary=notes.get("summary"), description=notes.get("description"), source="alertmanager",
        extra_links={"runbook": notes.get("runbook_url"), "source": alert.generatorURL},
    )


@router.post("/alertmanager")
def alertmanager_in(body: AlertmanagerWebhook,
                    comps: Annotated[Components, Depends(components)]) -> dict[str, Any]:
    """Queue one signed generic delivery per alert and receiver; 200 once committed."""
    config = _config(comps)
    db = _database(comps)
    now = datetime.now(UTC)
    queued = 0
    with db.begin() as conn:
        for alert in body.alerts:
            event = to_event(alert, body)
            payload = payloads.generic(event, config.public_url, config.dashboard_url)
            queued += outbox.enqueue_for_receivers(conn, config.receivers, alert_key=event.dedup_key,
                                                   payload=dict(payload), now=now)
    return {"alerts": len(body.alerts), "enqueued": queued}


@router.get("/alerts")
def get_alerts(comps: Annotated[Components, Depends(components)],
               state: AlertState | None = None) -> dict[str, Any]:
    """Current alert instances (firing, pending, recently resolved)."""
    found = list_alerts(_database(comps), state=state.value if state else None)
    return {"alerts": [a.to_dict() for a in found]}


@router.get("/alerts/deliveries")
def get_deliveries(
    comps: Annotated[Components, Depends(components)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    state: DeliveryState | None = None,
    target: str | None = None,
    alert_key: str | None = None,
) -> dict[str, Any]:
    """The delivery log, newest first: attempts, last status and error, delivered time."""
    rows = outbox.list_deliveries(_database(comps), limit=limit, state=state.value if state else None,
                                  target=target, alert_key=alert_key)
    return {"deliveries": [d.to_dict() for d in rows]}
