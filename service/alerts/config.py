"""The ``alerts`` section of the experiments file lives in :mod:`service.config.alerts`; re-exported here."""

from __future__ import annotations

from service.config.alerts import (
    PAGERDUTY_EVENTS_URL,
    AlertRule,
    AlertsConfig,
    DeliveryPolicy,
    ReceiverConfig,
    ReceiverKind,
    Severity,
)

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "AlertRule",
    "AlertsConfig",
    "DeliveryPolicy",
    "ReceiverConfig",
    "ReceiverKind",
    "Severity",
]
