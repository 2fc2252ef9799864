"""The ``alerts`` section of the experiments file: receivers, per-detector rules, delivery policy.

No secret lives here: a receiver names the
environment variables holding its signing secret, its URL (Slack's URL is a credential) and its
PagerDuty routing key; :mod:`service.alerts.sender` reads them through ``service.config.read_env``.

Example::

    alerts:
      public_url: https://tunewatch.example.com
      receivers:
        - {name: oncall, kind: generic, url: https://hooks.example.com/tw, secret_env: TW_HOOK_SECRET}
        - {name: slack, kind: slack, url_env: TW_SLACK_URL, severities: [ticket]}
        - {name: pd, kind: pagerduty, routing_key_env: TW_PD_KEY, severities: [page]}
      rules:
        quality_below_threshold: {for_s: 600, severity: page}
        latency_p95_above_control: {for_s: 900, keep_firing_for_s: 600}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from service.config._base import Strict as _Strict

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "AlertRule",
    "AlertsConfig",
    "DeliveryPolicy",
    "ReceiverConfig",
    "ReceiverKind",
    "Severity",
]

#: PagerDuty Events API v2 endpoint, the default URL of a ``pagerduty`` receiver
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

_NAME = r"^[a-z][a-z0-9_-]{0,63}$"


class Severity(StrEnum):
    """How urgent an alert is: ``page`` wakes someone, ``ticket`` waits for working hours."""

    PAGE = "page"
    TICKET = "ticket"


class ReceiverKind(StrEnum):
    GENERIC = "generic"  # our JSON, HMAC-signed (docs/webhooks.md)
    SLACK = "slack"  # Slack incoming webhook: {"text", "blocks"}
    PAGERDUTY = "pagerduty"  # PagerDuty Events API v2


def _check_http_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    if "@" in url.split("//", 1)[1].split("/", 1)[0]:
        raise ValueError("credentials in a receiver URL are refused; use url_env")


class ReceiverConfig(_Strict):
    """Where notifications go. ``url`` or ``url_env`` (exactly one; pagerduty defaults to its API)."""

    name: Annotated[str, Field(pattern=_NAME)]
    kind: ReceiverKind = ReceiverKind.GENERIC
    url: str | None = None
    #: environment variable holding the URL, for URLs that are credentials (Slack)
    url_env: str | None = None
    #: environment variable holding the HMAC secret; required for ``generic`` (every body is signed)
    secret_env: str | None = None
    #: environment variable holding the PagerDuty integration (routing) key
    routing_key_env: str | None = None
    severities: list[Severity] = Field(default_factory=lambda: [Severity.PAGE, Severity.TICKET], min_length=1)
    #: one POST, connect to last byte, seconds
    timeout_s: float = Field(10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _check(self) -> ReceiverConfig:
        if self.url is not None and self.url_env is not None:
            raise ValueError(f"receiver {self.name!r}: give `url` or `url_env`, not both")
        if self.url is None and self.url_env is None and self.kind is not ReceiverKind.PAGERDUTY:
            raise ValueError(f"receiver {self.name!r}: needs `url` or `url_env`")
        if self.url is not None:
            _check_http_url(self.url)
        if self.kind is ReceiverKind.GENERIC and not self.secret_env:
            raise ValueError(f"receiver {self.name!r}: a generic receiver needs `secret_env` "
                             "(its bodies are signed)")
        if self.kind is ReceiverKind.PAGERDUTY and not self.routing_key_env:
            raise ValueError(f"receiver {self.name!r}: a pagerduty receiver needs `routing_key_env`")
        return self

    def takes(self, severity: str | None) -> bool:
        """Whether this receiver wants an alert of ``severity`` (an unknown severity goes everywhere)."""
        if severity not in {s.value for s in Severity}:
            return True
        return severity in {s.value for s in self.severities}


class AlertRule(_Strict):
    """How one detector's signal becomes notifications (Prometheus ``for:`` / ``keep_firing_for:``).

    Seconds throughout. ``renotify_interval_s = 0`` never re-notifies while firing.
    """

    enabled: bool = True
    for_s: float = Field(300.0, ge=0)
    keep_firing_for_s: float = Field(0.0, ge=0)
    renotify_interval_s: float = Field(4 * 3600.0, ge=0)
    severity: Severity = Severity.TICKET


class DeliveryPolicy(_Strict):
    """Retries of one delivery: delay ``min(max, base * 2**(n-1))`` times a jitter in [0.5, 1]."""

    max_attempts: int = Field(10, ge=1, le=100)
    backoff_base_s: float = Field(30.0, gt=0)
    backoff_max_s: float = Field(3600.0, gt=0)
    #: deliveries sent per run of the sender job
    batch_size: int = Field(50, ge=1, le=1000)
    #: a claimed delivery is invisible to other runs this long (seconds); the sender raises it to
    #: ``batch_size`` times the slowest receiver timeout plus a minute when that is longer
    lease_s: float = Field(300.0, gt=0)


class AlertsConfig(_Strict):
    """The ``alerts`` section: receivers, rules per detector (``default_rule`` for the rest), links."""

    #: base URL of this tunewatch as on-call reaches it; links in payloads start with it
    public_url: str | None = None
    #: Grafana dashboard URL; ``{experiment}`` is replaced by the experiment name
    dashboard_url: str | None = None
    receivers: list[ReceiverConfig] = Field(default_factory=list)
    rules: dict[str, AlertRule] = Field(default_factory=dict)
    default_rule: AlertRule = AlertRule()
    delivery: DeliveryPolicy = DeliveryPolicy()
    #: a detector signal older than this (seconds) no longer counts: its alert resolves
    signal_max_age_s: float = Field(900.0, gt=0)
    #: resolved alert states are forgotten after this long (seconds)
    resolved_retention_s: float = Field(7 * 86400.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> AlertsConfig:
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names):
            raise ValueError(f"receiver names must be unique, got {names}")
        for url in (self.public_url, self.dashboard_url):
            if url is not None:
                _check_http_url(url)
        return self

    def rule_for(self, alert: str) -> AlertRule:
        return self.rules.get(alert, self.default_rule)

    def receiver(self, name: str) -> ReceiverConfig | None:
        return next((r for r in self.receivers if r.name == name), None)
