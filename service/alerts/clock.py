"""The clock the alert state machine and the sender read: injected, so tests move time by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Something that tells the time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall time, aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
