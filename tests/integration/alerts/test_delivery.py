"""The outbox and the sender against a real HTTP receiver, on SQLite and PostgreSQL.

The receiver verifies every request with the recipe of docs/webhooks.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from service.alerts import outbox, payloads
from service.alerts.sender import DELIVERY_HEADER, Receiver, deliver_due, resolve_receivers
from service.alerts.state import Evaluation, StateMachine
from service.config import (
    AlertRule,
    AlertsConfig,
    DeliveryPolicy,
    ReceiverConfig,
    ReceiverKind,
    Severity,
)
from service.store.db import Database
from tests.integration.alerts.conftest import SECRET, FakeClock, Hook

POLICY = DeliveryPolicy(max_attempts=5, backoff_base_s=30, backoff_max_s=3600)


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("tunewatch_webhook_deliveries_total", {"result": result}) or 0.0


def receiver(
    hook: Hook, name: str = "oncall", kind: ReceiverKind = ReceiverKind.GENERIC
) -> dict[str, Receiver]:
    return {
        name: Receiver(name=name, kind=kind, url=hook.url, secret=SECRET, routing_key="RK", timeout_s=5.0)
    }


def queue(db: Database, clock: FakeClock, n: int = 1, target: str = "oncall") -> list[int]:
    with db.begin() as conn:
        return [
            outbox.enqueue(
                conn,
                alert_key=f"a|e{i}|",
                target=target,
                now=clock.now(),
                payload=dict(
                    payloads.generic(
                        payloads.AlertEvent(
                            "firing", f"a|e{i}|", "a", f"e{i}", None, "page", 0.5, 0.1, clock.now()
                        )
                    )
                ),
            )
            for i in range(n)
        ]


def rows(db: Database) -> list[outbox.Delivery]:
    return sorted(outbox.list_deliveries(db, limit=1000), key=lambda d: d.id)


def test_delivered_and_verified(
    migrated_db: Database,
    hook: Hook,
    clock: FakeClock,
    http_client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TW_IT_SECRET", SECRET.decode())
    config = AlertsConfig(
        public_url="https://tw.example.com",
        receivers=[ReceiverConfig(name="oncall", url=hook.url, secret_env="TW_IT_SECRET")],
        rules={"ood_share_rising": AlertRule(for_s=0, severity=Severity.PAGE)},
    )
    receivers = resolve_receivers(config)
    machine = StateMachine(migrated_db, config, clock)
    before = counted("delivered")
    machine.evaluate([Evaluation("ood_share_rising", "demo", "fine_tuned", True, 0.31, 0.1, {"n": 500})])

    run = deliver_due(migrated_db, receivers, http_client, clock, policy=POLICY)

    assert (run.claimed, run.delivered, run.retried, run.failed) == (1, 1, 0, 0)
    [got] = hook.received
    assert got.verified and got.headers["content-type"] == "application/json"
    body = orjson.loads(got.body)
    assert (body["status"], body["alert"], body["experiment"], body["arm"]) == (
        "firing",
        "ood_share_rising",
        "demo",
        "fine_tuned",
    )
    assert body["value"] == 0.31 and body["evidence"] == {"n": 500} and body["severity"] == "page"
    [row] = rows(migrated_db)
    assert got.headers[DELIVERY_HEADER] == str(row.id)
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("delivered", 1, 204, None)
    assert row.delivered_at == clock.now() and row.payload == body
    assert counted("delivered") == before + 1

    clock.advance(60)
    machine.evaluate([Evaluation("ood_share_rising", "demo", "fine_tuned", False, 0.05, 0.1, {"n": 500})])
    deliver_due(migrated_db, receivers, http_client, clock, policy=POLICY)
    assert [orjson.loads(r.body)["status"] for r in hook.verified] == ["firing", "resolved"]
    assert deliver_due(migrated_db, receivers, http_client, clock, policy=POLICY).claimed == 0


def test_receiver_down_keeps_rows_pending_with_backoff_then_delivers_them_all(
    migrated_db: Database, clock: FakeClock, http_client: httpx.Client
) -> None:
    down = Hook(clock).start()
    down.stop()  # the port is known and closed: connections are refused
    receivers = receiver(down)
    ids = queue(migrated_db, clock, n=3)
    before = counted("retry")

    run = deliver_due(migrated_db, receivers, http_client, clock, policy=POLICY)

    assert (run.claimed, run.retried, run.delivered) == (3, 3, 0)
    assert counted("retry") == before + 3
    for row in rows(migrated_db):
        assert (row.state, row.attempts, row.last_status) == ("pending", 1, None)
        assert row.last_error is not None and "ConnectError" in row.last_error
        assert row.next_attempt_at is not None
        assert (
            clock.now() + timedelta(seconds=15) <= row.next_attempt_at <= clock.now() + timedelta(seconds=30)
        )
    assert deliver_due(migrated_db, receivers, http_client, clock, policy=POLICY).claimed == 0  # backing off

    up = Hook(clock, port=down.port).start()  # the receiver comes back on its address
    try:
        clock.advance(30)
        run = deliver_due(migrated_db, receivers, http_client, clock, policy=POLICY)
        assert (run.claimed, run.delivered) == (3, 3)
        assert sorted(int(r.headers[DELIVERY_HEADER]) for r in up.verified) == ids
        assert [(r.state, r.attempts, r.last_status) for r in rows(migrated_db)] == [
            ("delivered", 2, 204)
        ] * 3
    finally:
        up.stop()


def test_server_errors_are_retried_until_delivered(
    migrated_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    hook.script.extend([500, 503])
    queue(migrated_db, clock)
    receivers = receiver(hook)
    seen = []
    for _ in range(3):
        seen.append(deliver_due(migrated_db, receivers, http_client, clock, policy=POLICY))
        [row] = rows(migrated_db)
        if row.state == "pending":
            assert row.last_error is not None and row.last_error.startswith(
                f"HTTP {row.last_status}: not today"
            )
            assert row.next_attempt_at is not None
            clock.current = row.next_attempt_at
    assert [(r.retried, r.delivered) for r in seen] == [(1, 0), (1, 0), (0, 1)]
    [row] = rows(migrated_db)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 3, 204)
    assert [r.status for r in hook.received] == [500, 503, 204] and all(r.verified for r in hook.received)
    # one delivery, one id: the receiver can drop the repeats
    assert len({r.headers[DELIVERY_HEADER] for r in hook.received}) == 1


def test_retry_after_is_honoured(
    sqlite_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    hook.script.append((429, {"retry-after": "900"}))
    queue(sqlite_db, clock)
    deliver_due(sqlite_db, receiver(hook), http_client, clock, policy=POLICY)
    [row] = rows(sqlite_db)
    assert row.state == "pending" and row.last_status == 429
    assert row.next_attempt_at is not None and row.next_attempt_at >= clock.now() + timedelta(seconds=900)


def test_attempts_are_bounded_then_failed_with_the_reason(
    migrated_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    policy = DeliveryPolicy(max_attempts=3, backoff_base_s=10, backoff_max_s=60)
    hook.script.extend([500] * 10)
    queue(migrated_db, clock)
    before = counted("failed")
    for _ in range(6):
        deliver_due(migrated_db, receiver(hook), http_client, clock, policy=policy)
        clock.advance(60)
    [row] = rows(migrated_db)
    assert (row.state, row.attempts, row.last_status) == ("failed", 3, 500)
    assert row.last_error is not None and row.last_error.startswith("gave up after 3 attempts: HTTP 500")
    assert row.next_attempt_at is None and row.delivered_at is None
    assert len(hook.received) == 3
    assert counted("failed") == before + 1


def test_a_client_error_fails_at_once(
    sqlite_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    hook.script.append(404)
    queue(sqlite_db, clock)
    run = deliver_due(sqlite_db, receiver(hook), http_client, clock, policy=POLICY)
    assert run.failed == 1
    [row] = rows(sqlite_db)
    assert (row.state, row.attempts, row.last_status) == ("failed", 1, 404)
    assert row.last_error is not None and row.last_error.startswith("not retryable: HTTP 404")


class _Tamper(httpx.BaseTransport):
    """A man in the middle that flips one byte of every request body."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = bytearray(request.read())
        body[len(body) // 2] ^= 0x01
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
        return self._inner.handle_request(
            httpx.Request(request.method, request.url, headers=headers, content=bytes(body))
        )

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def tampering_client() -> Iterator[httpx.Client]:
    with httpx.Client(transport=_Tamper(), timeout=5.0) as client:
        yield client


def test_a_tampered_body_is_rejected_by_the_documented_verification(
    sqlite_db: Database, hook: Hook, clock: FakeClock, tampering_client: httpx.Client
) -> None:
    queue(sqlite_db, clock)
    run = deliver_due(sqlite_db, receiver(hook), tampering_client, clock, policy=POLICY)
    assert run.failed == 1
    [got] = hook.received
    assert not got.verified and got.status == 401
    [row] = rows(sqlite_db)
    assert (row.state, row.last_status) == ("failed", 401)


def test_a_replayed_request_is_rejected_after_the_window(
    sqlite_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    queue(sqlite_db, clock)
    deliver_due(sqlite_db, receiver(hook), http_client, clock, policy=POLICY)
    [original] = hook.received
    assert original.verified
    names = ("content-type", "x-tunewatch-timestamp", "x-tunewatch-signature")
    headers = {k: original.headers[k] for k in names}
    clock.advance(299)
    assert http_client.post(hook.url, content=original.body, headers=headers).status_code == 204
    clock.advance(2)
    assert http_client.post(hook.url, content=original.body, headers=headers).status_code == 401


def test_slack_and_pagerduty_bodies_reach_the_receiver_signed(
    sqlite_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    receivers = {
        **receiver(hook, "slack", ReceiverKind.SLACK),
        **receiver(hook, "pd", ReceiverKind.PAGERDUTY),
    }
    queue(sqlite_db, clock, target="slack")
    queue(sqlite_db, clock, target="pd")
    assert deliver_due(sqlite_db, receivers, http_client, clock, policy=POLICY).delivered == 2
    slack, pd = (orjson.loads(r.body) for r in hook.verified)
    assert set(slack) == {"text", "blocks"}
    assert (
        pd["routing_key"] == "RK"
        and pd["event_action"] == "trigger"
        and pd["payload"]["severity"] == "critical"
    )
    assert all("RK" not in r.payload.values() for r in rows(sqlite_db))  # the key is never stored


def test_a_payload_that_cannot_be_rendered_fails_at_once(
    sqlite_db: Database, hook: Hook, clock: FakeClock, http_client: httpx.Client
) -> None:
    with sqlite_db.begin() as conn:
        outbox.enqueue(conn, alert_key="k", target="slack", payload={"status": "firing"}, now=clock.now())
    assert (
        deliver_due(
            sqlite_db, receiver(hook, "slack", ReceiverKind.SLACK), http_client, clock, policy=POLICY
        ).failed
        == 1
    )
    [row] = rows(sqlite_db)
    assert row.state == "failed" and row.last_error is not None
    assert row.last_error.startswith("not retryable: cannot render it for a slack receiver")
    assert hook.received == []


def test_a_delivery_to_an_unknown_receiver_fails(
    sqlite_db: Database, clock: FakeClock, http_client: httpx.Client
) -> None:
    queue(sqlite_db, clock, target="gone")
    assert deliver_due(sqlite_db, {}, http_client, clock, policy=POLICY).failed == 1
    [row] = rows(sqlite_db)
    assert row.state == "failed" and row.last_error == "no receiver named 'gone' is configured"


def test_a_claim_is_a_lease_so_a_crash_mid_post_loses_nothing(
    migrated_db: Database, clock: FakeClock
) -> None:
    [delivery_id] = queue(migrated_db, clock)
    assert [d.id for d in outbox.claim_due(migrated_db, clock.now(), limit=10, lease_s=300)] == [delivery_id]
    assert outbox.claim_due(migrated_db, clock.now(), limit=10, lease_s=300) == []  # another run, same time
    clock.advance(300)  # the claimant died: the lease ran out
    assert [d.id for d in outbox.claim_due(migrated_db, clock.now(), limit=10, lease_s=300)] == [delivery_id]
