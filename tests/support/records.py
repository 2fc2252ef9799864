"""Recorder ``Record`` factories for store tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.telemetry.recorder import Record

#: a fixed Unix time (2026-11-24 12:00:00 UTC) so tests never depend on the clock
T0 = 1_795_521_600.0


def make_record(i: int = 0, **overrides: Any) -> Record:
    """A plausible served request; ``overrides`` replace any field. ``i`` varies the id and values."""
    fields: dict[str, Any] = {
        "request_id": f"tw-test{i:010d}",
        "started_at": T0 + i,
        "experiment": "demo",
        "arm": "base" if i % 2 == 0 else "fine_tuned",
        "upstream": "base-upstream",
        "stream": i % 3 == 0,
        "status": 200,
        "outcome": "ok",
        "error_kind": None,
        "latency_s": 0.5 + i / 1000,
        "ttft_s": 0.1,
        "upstream_latency_s": 0.45,
        "overhead_s": 0.001,
        "prompt_tokens": 20,
        "completion_tokens": 50,
        "cost_usd": 0.0001,
        "unit_id": f"user-{i % 7}",
        "sampled": i % 4 == 0,
        "query": f"How do I file claim number {i}?",
    }
    fields.update(overrides)
    if fields["sampled"] and "messages" not in overrides:
        fields["messages"] = [{"role": "user", "content": fields["query"]}]
        fields.setdefault("response_text", f"You file claim {i} online.")
    return Record(**fields)


def at(record_time: float) -> datetime:
    """The aware UTC datetime of a Unix time."""
    return datetime.fromtimestamp(record_time, UTC)
