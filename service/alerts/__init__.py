"""tunewatch's own alerts: the state machine over detector signals and the signed webhook outbox.

Jobs (both blocking, run in scheduler threads, singletons across replicas):

- ``evaluate alerts``: ``StateMachine(db, config, clock).evaluate(latest_evaluations(db, now, max_age))``
  turns detector signals into transitions and enqueues deliveries in the same transaction;
- ``deliver webhooks``: :func:`deliver_due` POSTs the due outbox rows, signed, with retries.

Layering: imports ``service.store``, ``service.config``, ``service.errors`` and
``service.telemetry.metrics`` only. Must not import ``service.gateway``, ``quality`` or ``drift``.
This module only re-exports.
"""

from __future__ import annotations

from service.alerts.clock import Clock, SystemClock
from service.alerts.outbox import Delivery, list_deliveries
from service.alerts.sender import DeliveryRun, Receiver, build_http_client, deliver_due, resolve_receivers
from service.alerts.signals import latest_evaluations
from service.alerts.signing import sign, signature_headers, verify
from service.alerts.state import AlertInstance, Evaluation, EvaluationRun, StateMachine, list_alerts

__all__ = [
    "AlertInstance",
    "Clock",
    "Delivery",
    "DeliveryRun",
    "Evaluation",
    "EvaluationRun",
    "Receiver",
    "StateMachine",
    "SystemClock",
    "build_http_client",
    "deliver_due",
    "latest_evaluations",
    "list_alerts",
    "list_deliveries",
    "resolve_receivers",
    "sign",
    "signature_headers",
    "verify",
]
