"""The webhook outbox: ``webhook_deliveries`` rows, pending until delivered or failed; also the delivery log.

A notification is written in the same transaction as the alert transition that caused it
(:func:`enqueue` takes the caller's connection), so a crash can lose neither. The sender claims
due rows with a lease (``next_attempt_at`` pushed past the POST's longest duration; PostgreSQL
claims with ``FOR UPDATE SKIP LOCKED`` so two replicas never claim the same row), POSTs, then
records the attempt. A process dying mid-POST leaves the row pending; it is due again when the
lease ends: delivery is at least once, receivers dedup on ``x-tunewatch-delivery``.

Every function blocks (short transactions). Rows: ``pending`` → ``delivered`` | ``failed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, insert, or_, select, update

from service.config import ReceiverConfig
from service.store.db import Database
from service.store.models import DeliveryState, WebhookDelivery

__all__ = [
    "Delivery",
    "claim_due",
    "enqueue",
    "enqueue_for_receivers",
    "list_deliveries",
    "record_delivered",
    "record_failed",
    "record_retry",
]

_ERROR_MAX_CHARS = 500
_T = WebhookDelivery


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row. ``target`` is the receiver's name (never its URL); ``payload`` the generic JSON."""

    id: int
    created_at: datetime
    alert_key: str
    target: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the admin API."""
        return {
            "id": self.id, "created_at": _iso(self.created_at), "alert_key": self.alert_key,
            "target": self.target, "state": self.state, "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at), "last_status": self.last_status,
            "last_error": self.last_error, "delivered_at": _iso(self.delivered_at), "payload": self.payload,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_COLUMNS = (
    _T.id, _T.created_at, _T.alert_key, _T.target, _T.payload, _T.state, _T.attempts, _T.next_attempt_at,
    _T.last_status, _T.last_error, _T.delivered_at,
)


def _row(row: Sequence[Any]) -> Delivery:
    payload = orjson.loads(row[4])
    return Delivery(
        id=row[0], created_at=row[1], alert_key=row[2], target=row[3],
        payload=payload if isinstance(payload, dict) else {"value": payload}, state=row[5],
        attempts=row[6], next_attempt_at=row[7], last_status=row[8], last_error=row[9], delivered_at=row[10],
    )


def enqueue(conn: Connection, *, alert_key: str, target: str, payload: Mapping[str, Any],
            now: datetime) -> int:
    """Insert one pending delivery, due at once, in the caller's transaction; returns its id."""
    result = conn.execute(
        insert(_T).values(
            created_at=now, alert_key=alert_key, target=target, payload=orjson.dumps(dict(payload)).decode(),
            state=DeliveryState.PENDING.value, attempts=0, next_attempt_at=now,
        ).returning(_T.id)
    )
    return int(result.scalar_one())


def enqueue_for_receivers(conn: Connection, receivers: Sequence[ReceiverConfig], *, alert_key: str,
                          payload: Mapping[str, Any], now: datetime) -> int:
    """One delivery per receiver that takes ``payload["severity"]``; returns how many were queued."""
    severity = payload.get("severity")
    count = 0
    for receiver in receivers:
        if receiver.takes(severity if isinstance(severity, str) else None):
            enqueue(conn, alert_key=alert_key, target=receiver.name, payload=payload, now=now)
            count += 1
    return count


def claim_due(db: Database, now: datetime, *, limit: int, lease_s: float) -> list[Delivery]:
    """Pending deliveries due at ``now`` (oldest first, at most ``limit``), leased for ``lease_s`` seconds."""
    query = (
        select(*_COLUMNS)
        .where(_T.state == DeliveryState.PENDING.value)
        .where(or_(_T.next_attempt_at.is_(None), _T.next_attempt_at <= now))
        .order_by(_T.id)
        .limit(limit)
    )
    if db.is_postgres:
        query = query.with_for_update(skip_locked=True)
    with db.begin() as conn:
        rows = [_row(r) for r in conn.execute(query)]
        if rows:
            conn.execute(
                update(_T).where(_T.id.in_([r.id for r in rows]))
                .values(next_attempt_at=now + timedelta(seconds=lease_s))
            )
    return rows


def _finish(db: Database, delivery_id: int, **values: Any) -> None:
    with db.begin() as conn:
        conn.execute(
            update(_T).where(_T.id == delivery_id, _T.state == DeliveryState.PENDING.value).values(**values)
        )


def _clip(error: str | None) -> str | None:
    return error[:_ERROR_MAX_CHARS] if error is not None else None


def record_delivered(db: Database, delivery_id: int, *, attempts: int, status: int, now: datetime) -> None:
    """Mark a delivery delivered after ``attempts`` attempts, the last answered with ``status``."""
    _finish(db, delivery_id, state=DeliveryState.DELIVERED.value, attempts=attempts, last_status=status,
            last_error=None, delivered_at=now, next_attempt_at=None)


def record_retry(db: Database, delivery_id: int, *, attempts: int, status: int | None, error: str,
                 next_attempt_at: datetime) -> None:
    """Keep a delivery pending, due again at ``next_attempt_at``, with the failed attempt's outcome."""
    _finish(db, delivery_id, attempts=attempts, last_status=status, last_error=_clip(error),
            next_attempt_at=next_attempt_at)


def record_failed(db: Database, delivery_id: int, *, attempts: int, status: int | None, error: str) -> None:
    """Give a delivery up: ``failed``, with the last status and the reason."""
    _finish(db, delivery_id, state=DeliveryState.FAILED.value, attempts=attempts, last_status=status,
            last_error=_clip(error), next_attempt_at=None)


def list_deliveries(db: Database, *, limit: int = 100, state: str | None = None, target: str | None = None,
                    alert_key: str | None = None) -> list[Delivery]:
    """The delivery log, newest first."""
    query = select(*_COLUMNS).order_by(_T.id.desc()).limit(limit)
    if state is not None:
        query = query.where(_T.state == state)
    if target is not None:
        query = query.where(_T.target == target)
    if alert_key is not None:
        query = query.where(_T.alert_key == alert_key)
    with db.begin() as conn:
        return [_row(r) for r in conn.execute(query)]
