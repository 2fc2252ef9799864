"""The webhook sender job: POST due outbox rows, signed, with bounded retries and backoff.

:func:`deliver_due` is the scheduled job (``deliver webhooks``). It blocks (database and HTTP),
so it runs in a scheduler worker thread, never on the event loop. Per claimed delivery:

- 2xx → ``delivered``;
- a transport error (connect refused, timeout …), 408, 425, 429 or 5xx → still ``pending``, due
  again after ``min(backoff_max_s, backoff_base_s * 2**(attempts-1))`` times a jitter in [0.5, 1]
  (a ``retry-after`` in seconds is honoured, capped at ``backoff_max_s``), so a receiver that is
  down loses nothing and many receivers recovering at once are not hit in lockstep;
- any other status (a 4xx: wrong URL, bad key, refused body) → ``failed`` at once: resending the
  same bytes cannot help;
- after ``max_attempts`` attempts → ``failed``, with the last status and error kept on the row.

Secrets (signing secret, Slack URL, PagerDuty routing key) are read from the environment once by
:func:`resolve_receivers` and never logged or stored; ``last_error`` holds no URL.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import orjson

from service.alerts import outbox, payloads
from service.alerts.clock import Clock
from service.alerts.signing import signature_headers
from service.config import PAGERDUTY_EVENTS_URL, AlertsConfig, DeliveryPolicy, ReceiverKind, read_env
from service.errors import ConfigError
from service.store.db import Database
from service.telemetry.metrics import WEBHOOK_DELIVERIES

__all__ = [
    "DELIVERY_HEADER", "DeliveryRun", "Receiver", "backoff_s", "build_http_client", "deliver_due", "render",
    "resolve_receivers",
]

log = logging.getLogger(__name__)

#: the outbox row id: the same on every retry of one delivery, so receivers can drop duplicates
DELIVERY_HEADER = "x-tunewatch-delivery"
_RETRYABLE = frozenset({408, 425, 429})
_BODY_SNIPPET_CHARS = 200


@dataclass(frozen=True, slots=True)
class Receiver:
    """A receiver with its secrets resolved. ``repr`` hides them."""

    name: str
    kind: ReceiverKind
    url: str
    secret: bytes | None
    routing_key: str | None
    timeout_s: float

    def __repr__(self) -> str:
        return f"Receiver(name={self.name!r}, kind={self.kind.value!r})"


@dataclass(frozen=True, slots=True)
class DeliveryRun:
    """What one run of the sender did (counts of deliveries)."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0


def _env(name: str, receiver: str, what: str) -> str:
    value = read_env(name)
    if value is None:
        raise ConfigError(f"alerts receiver {receiver!r}: environment variable {name} ({what}) is not set")
    return value.get_secret_value()


def resolve_receivers(config: AlertsConfig) -> dict[str, Receiver]:
    """Each configured receiver with its URL and secrets read from the environment (at startup).

    Raises ``ConfigError`` naming the missing variable.
    """
    resolved: dict[str, Receiver] = {}
    for rc in config.receivers:
        url = rc.url or (_env(rc.url_env, rc.name, "its URL") if rc.url_env else PAGERDUTY_EVENTS_URL)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"alerts receiver {rc.name!r}: {rc.url_env} does not hold an http(s) URL")
        resolved[rc.name] = Receiver(
            name=rc.name, kind=rc.kind, url=url,
            secret=_env(rc.secret_env, rc.name, "the signing secret").encode() if rc.secret_env else None,
            routing_key=_env(rc.routing_key_env, rc.name, "the routing key") if rc.routing_key_env else None,
            timeout_s=rc.timeout_s,
        )
    return resolved


def build_http_client(*, max_connections: int = 10) -> httpx.Client:
    """The sender's sync client: bounded pool, no redirects (a 3xx is a misconfigured URL).

    Per-request timeouts come from each receiver's ``timeout_s``; the owner closes the client.
    """
    return httpx.Client(
        timeout=httpx.Timeout(10.0), follow_redirects=False,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"user-agent": "tunewatch-webhooks/1"},
    )


def render(receiver: Receiver, payload: Mapping[str, Any]) -> bytes:
    """The body for ``receiver``'s kind from the stored generic payload."""
    generic = cast(payloads.GenericPayload, dict(payload))
    if receiver.kind is ReceiverKind.SLACK:
        return orjson.dumps(payloads.slack(generic))
    if receiver.kind is ReceiverKind.PAGERDUTY:
        return orjson.dumps(payloads.pagerduty(generic, receiver.routing_key or ""))
    return orjson.dumps(generic)


def backoff_s(attempts: int, policy: DeliveryPolicy, rng: random.Random) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (exponential, jittered, capped)."""
    exponential = min(policy.backoff_max_s, policy.backoff_base_s * 2.0 ** min(attempts - 1, 60))
    return exponential * rng.uniform(0.5, 1.0)


def _retry_after_s(response: httpx.Response) -> float | None:
    # only the delay-seconds form; an HTTP date is rare from webhook receivers and falls back to backoff
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None  # None: no HTTP answer
    error: str | None  # None: delivered
    retry_after_s: float | None = None
    permanent: bool = False  # resending cannot help


def _attempt(client: httpx.Client, receiver: Receiver, delivery: outbox.Delivery, now: datetime) -> _Outcome:
    """Render, sign and POST once."""
    try:
        body = render(receiver, delivery.payload)
    except (KeyError, TypeError, ValueError) as exc:
        # the stored payload does not fit this receiver's format: the same bytes will never fit
        reason = f"cannot render it for a {receiver.kind.value} receiver: {exc!r}"
        return _Outcome(None, reason, permanent=True)
    headers = {"content-type": "application/json", DELIVERY_HEADER: str(delivery.id)}
    if receiver.secret is not None:
        headers.update(signature_headers(receiver.secret, body, now))
    try:
        response = client.post(receiver.url, content=body, headers=headers,
                               timeout=httpx.Timeout(receiver.timeout_s))
    except httpx.HTTPError as exc:
        # the type names what went wrong; the URL (a credential for Slack) is scrubbed from the text
        return _Outcome(None, f"{type(exc).__name__}: {str(exc).replace(receiver.url, '<receiver url>')}")
    status = response.status_code
    if 200 <= status < 300:
        return _Outcome(status, None)
    snippet = response.text[:_BODY_SNIPPET_CHARS].strip()
    retryable = status >= 500 or status in _RETRYABLE
    return _Outcome(status, f"HTTP {status}: {snippet}", _retry_after_s(response), permanent=not retryable)


def deliver_due(db: Database, receivers: Mapping[str, Receiver], http_client: httpx.Client, clock: Clock, *,
                policy: DeliveryPolicy | None = None, rng: random.Random | None = None) -> DeliveryRun:
    """Send every due delivery once (up to ``policy.batch_size``); blocking. Returns the counts."""
    policy = policy or DeliveryPolicy()
    rng = rng or random.Random()
    # POSTs go one after another: the lease must outlast the whole batch at its slowest, or another
    # replica could claim (and send again) a row this run has not reached yet
    slowest_s = max((r.timeout_s for r in receivers.values()), default=0.0)
    lease_s = max(policy.lease_s, policy.batch_size * slowest_s + 60.0)
    claimed = outbox.claim_due(db, clock.now(), limit=policy.batch_size, lease_s=lease_s)
    delivered = retried = failed = 0
    for delivery in claimed:
        attempts = delivery.attempts + 1
        receiver = receivers.get(delivery.target)
        if receiver is None:
            outbox.record_failed(db, delivery.id, attempts=delivery.attempts, status=None,
                                 error=f"no receiver named {delivery.target!r} is configured")
            WEBHOOK_DELIVERIES.labels("failed").inc()
            failed += 1
            continue
        try:
            outcome = _attempt(http_client, receiver, delivery, clock.now())
        except Exception as exc:  # task boundary: one bad row must not stop the others
            log.error("alerts.delivery_error", exc_info=True, extra={"delivery_id": delivery.id})
            text = str(exc).replace(receiver.url, "<receiver url>")
            outcome = _Outcome(None, f"{type(exc).__name__}: {text}")
        now = clock.now()
        if outcome.error is None:
            outbox.record_delivered(db, delivery.id, attempts=attempts, status=outcome.status or 200, now=now)
            WEBHOOK_DELIVERIES.labels("delivered").inc()
            delivered += 1
            continue
        if not outcome.permanent and attempts < policy.max_attempts:
            delay = backoff_s(attempts, policy, rng)
            if outcome.retry_after_s is not None:
                delay = max(delay, min(outcome.retry_after_s, policy.backoff_max_s))
            outbox.record_retry(db, delivery.id, attempts=attempts, status=outcome.status,
                                error=outcome.error, next_attempt_at=now + timedelta(seconds=delay))
            WEBHOOK_DELIVERIES.labels("retry").inc()
            log.warning("alerts.delivery_retry", extra={
                "delivery_id": delivery.id, "target": receiver.name, "attempts": attempts,
                "status": outcome.status, "delay_s": delay})
            retried += 1
            continue
        reason = (f"not retryable: {outcome.error}" if outcome.permanent
                  else f"gave up after {attempts} attempts: {outcome.error}")
        outbox.record_failed(db, delivery.id, attempts=attempts, status=outcome.status, error=reason)
        WEBHOOK_DELIVERIES.labels("failed").inc()
        log.error("alerts.delivery_failed", extra={"delivery_id": delivery.id, "target": receiver.name,
                                                  "attempts": attempts, "status": outcome.status})
        failed += 1
    run = DeliveryRun(claimed=len(claimed), delivered=delivered, retried=retried, failed=failed)
    if claimed:
        log.info("alerts.deliveries_sent", extra={"claimed": run.claimed, "delivered": delivered,
                                                 "retried": retried, "failed": failed})
    return run
