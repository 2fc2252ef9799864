"""The recorder: bounded, never blocking, batches by size or age, keeps what a failing sink refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from prometheus_client import REGISTRY

from service.telemetry.recorder import Record, Recorder
from tests.support.wait import wait_for


def record(i: int) -> Record:
    return Record(f"r{i}", time.time(), "demo", "base", "base", False, 200, "ok", None, 0.1, None, 0.09,
                  0.01, 10, 5, 0.001, "user", False, "q")


class Sink:
    def __init__(self, fail_times: int = 0, gate: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_times = fail_times
        self.gate = gate
        self.calls = 0

    def write(self, records: Sequence[Record]) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("database is down")
        self.batches.append([r.request_id for r in records])

    @property
    def written(self) -> list[str]:
        return [rid for batch in self.batches for rid in batch]


def dropped() -> float:
    return REGISTRY.get_sample_value("tunewatch_records_dropped_total") or 0.0


def test_full_queue_drops_and_counts_without_blocking() -> None:
    rec = Recorder(Sink(), max_queue=10, batch_size=100)  # never started: nothing drains
    before = dropped()
    for i in range(25):
        rec.put_nowait(record(i))
    assert rec.queued == 10
    assert rec.dropped == 15
    assert dropped() == before + 15


def test_batches_by_size_and_by_age() -> None:
    sink = Sink()
    rec = Recorder(sink, batch_size=5, flush_interval_s=0.05)
    rec.start()
    try:
        for i in range(12):
            rec.put_nowait(record(i))
        wait_for(lambda: len(sink.written) == 12, what="every record written")
        assert all(len(b) <= 5 for b in sink.batches)
        assert sink.written == [f"r{i}" for i in range(12)]  # in order, once each
    finally:
        rec.close(5)


def test_a_failing_sink_loses_nothing_and_is_retried() -> None:
    sink = Sink(fail_times=3)
    rec = Recorder(sink, batch_size=50, flush_interval_s=0.01, max_backoff_s=0.05)
    rec.start()
    try:
        for i in range(40):
            rec.put_nowait(record(i))
        wait_for(lambda: len(sink.written) == 40, what="the records after the sink recovered")
        assert sink.calls >= 4
        assert sorted(sink.written) == sorted(f"r{i}" for i in range(40))
    finally:
        rec.close(5)


def test_close_flushes_what_is_queued_and_then_refuses() -> None:
    gate = threading.Event()
    sink = Sink(gate=gate)
    rec = Recorder(sink, batch_size=1000, flush_interval_s=10)
    rec.start()
    for i in range(300):
        rec.put_nowait(record(i))
    gate.set()
    assert rec.close(10) == 0
    assert len(sink.written) == 300
    rec.put_nowait(record(999))  # after close: dropped, counted, no exception
    assert rec.dropped == 1


def test_flush_waits_for_the_writer() -> None:
    sink = Sink()
    rec = Recorder(sink, batch_size=1000, flush_interval_s=30)
    rec.start()
    try:
        rec.put_nowait(record(1))
        assert rec.flush(5)
        assert sink.written == ["r1"]
    finally:
        rec.close(5)
