"""The recorder: a bounded queue on the hot path, drained by one batch-writer thread.

``Recorder.put_nowait`` is what the hot path calls after a response's last byte: it appends to a
bounded deque (thread-safe, no lock of ours), never blocks and never raises; when the deque is
full the record is dropped and counted in ``tunewatch_records_dropped_total``.

The writer thread takes batches (``batch_size`` records, or whatever waited ``flush_interval_s``,
whichever first) and hands them to a :class:`BatchSink` (``store/`` implements it; this module
never imports the store). A failing sink keeps its batch and is retried with capped exponential
backoff; records keep queueing behind it up to the bound. ``close()`` stops accepting, drains the
queue into the sink within a grace period, and joins the thread.

Must not import: store, quality, drift, alerts (the hot path depends on this module).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.telemetry.metrics import RECORDER_QUEUE, RECORDER_WRITE_ERRORS, RECORDS_DROPPED, RECORDS_WRITTEN

__all__ = ["BatchSink", "Record", "Recorder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    """What the hot path knows of one served request.

    Times are seconds (``started_at`` is Unix time). ``unit_id`` is the raw sticky id and must be
    hashed by the sink before it is stored. ``messages``/``response_text`` are set only for sampled
    requests; ``query`` (the last user message) for every request, for out-of-domain scoring.
    """

    request_id: str
    started_at: float
    experiment: str
    arm: str
    upstream: str
    stream: bool
    status: int
    outcome: str
    error_kind: str | None
    latency_s: float
    ttft_s: float | None
    upstream_latency_s: float | None
    overhead_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    unit_id: str | None
    sampled: bool
    query: str | None
    messages: list[Any] | None = None
    response_text: str | None = None
    context: str | None = None
    logprob_mean: float | None = None
    shadow: bool = False


class BatchSink(Protocol):
    """Where batches go; blocking, called from the writer thread only."""

    def write(self, records: Sequence[Record]) -> None:
        """Persist every record or raise; a raise means none of them were kept."""


class Recorder:
    """Bounded queue + batch-writer thread. Create, ``start()``, ``put_nowait()``, ``close()``."""

    def __init__(
        self,
        sink: BatchSink | None,
        *,
        max_queue: int = 50_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._sink = sink
        self._queue: deque[Record] = deque()
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_backoff_s = max_backoff_s
        self._wake = threading.Event()
        self._stopping = False
        self._accepting = True
        self._thread: threading.Thread | None = None
        self._pending: list[Record] = []
        self._idle = threading.Condition()
        self.dropped = 0

    # -- hot path -------------------------------------------------------------------------------

    def put_nowait(self, record: Record) -> None:
        """Queue ``record`` for writing; never blocks, never raises; drops (counted) when full."""
        queue = self._queue
        if not self._accepting or len(queue) >= self._max_queue:
            self.dropped += 1
            RECORDS_DROPPED.inc()
            return
        queue.append(record)
        if len(queue) == self._batch_size:
            self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._sink is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="tunewatch-recorder", daemon=True)
        self._thread.start()

    def close(self, grace_s: float = 10.0) -> int:
        """Stop accepting, write what is queued within ``grace_s`` seconds; returns records left unwritten."""
        self._accepting = False
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(grace_s)
            if self._thread.is_alive():
                left = len(self._queue) + len(self._pending)
                log.error("recorder.flush_incomplete", extra={"records_left": left})
                return left
        return 0 if self._sink is not None else len(self._queue)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until everything queued so far is written (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._idle:
            while self._queue or self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._pending)

    # -- writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while True:
            if not self._pending:
                self._take()
            RECORDER_QUEUE.set(len(self._queue) + len(self._pending))
            if not self._pending:
                with self._idle:
                    self._idle.notify_all()
                if self._stopping:
                    return
                self._wake.wait(self._flush_interval_s)
                self._wake.clear()
                continue
            if self._write():
                backoff = 0.0
                continue  # more may be waiting: no sleep
            # keep the batch; retry with capped exponential backoff (close() bounds the wait at shutdown)
            backoff = min(self._max_backoff_s, max(0.05, backoff * 2))
            self._wake.wait(backoff)
            self._wake.clear()

    def _take(self) -> None:
        queue, batch = self._queue, self._pending
        limit = self._batch_size
        while queue and len(batch) < limit:
            batch.append(queue.popleft())

    def _write(self) -> bool:
        assert self._sink is not None
        batch = self._pending
        try:
            self._sink.write(batch)
        except Exception:  # task boundary: log, count, keep the batch, retry with backoff
            RECORDER_WRITE_ERRORS.inc()
            log.warning("recorder.write_failed", exc_info=True, extra={"records": len(batch)})
            return False
        RECORDS_WRITTEN.inc(len(batch))
        self._pending = []
        return True
