"""Scheduled jobs: APScheduler wiring and the run-once-across-replicas lock.

Each :class:`Job` is a plain blocking function given its dependencies by ``app.py``. The
scheduler (``AsyncIOScheduler``, ``max_instances=1``, ``coalesce=True``, an explicit
``misfire_grace_time``) runs each one off the event loop in a worker thread. A ``singleton`` job
(detectors, alerts, retention) first takes a PostgreSQL advisory try-lock, so one replica runs it
and the others skip; on SQLite (one process) the lock is a no-op. Work shared by claiming rows
(the scorer) is not a singleton. A failing job is logged and counted, and runs again next time.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text

from service.store.db import Database
from service.telemetry.metrics import JOB_RUNS

__all__ = ["Job", "JobRunner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """A blocking function run every ``interval_s`` seconds."""

    name: str
    run: Callable[[], Any]
    interval_s: float
    singleton: bool = False
    #: releases what the job holds (thread pools, clients); called once when the scheduler stops
    close: Callable[[], None] | None = None


class JobRunner:
    """Owns the scheduler; ``start()``/``stop()`` from the lifespan, ``run_once()`` from the CLI and tests."""

    def __init__(self, jobs: list[Job], database: Database | None, *, misfire_grace_s: int = 30) -> None:
        self.jobs = {job.name: job for job in jobs}
        self._database = database
        self._misfire_grace_s = misfire_grace_s
        self._scheduler: AsyncIOScheduler | None = None

    def run_once(self, name: str) -> Any:
        """Run job ``name`` now in this thread (blocking); None when another replica holds its lock."""
        job = self.jobs[name]
        with self._lock(job) as acquired:
            if not acquired:
                JOB_RUNS.labels(name, "skipped").inc()
                return None
            try:
                result = job.run()
            except Exception:
                JOB_RUNS.labels(name, "error").inc()
                raise
        JOB_RUNS.labels(name, "ok").inc()
        return result

    async def _tick(self, name: str) -> None:
        try:
            await anyio.to_thread.run_sync(self.run_once, name)
        except Exception:  # task boundary: log, count (in run_once), run again next time
            log.error("job.failed", exc_info=True, extra={"job": name})

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        for job in self.jobs.values():
            scheduler.add_job(
                self._tick, "interval", seconds=job.interval_s, args=[job.name], id=job.name,
                max_instances=1, coalesce=True, misfire_grace_time=self._misfire_grace_s,
            )
            JOB_RUNS.labels(job.name, "ok")  # the series exists from the start
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler.started", extra={"jobs": sorted(self.jobs)})

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for job in self.jobs.values():
            if job.close is not None:
                job.close()

    @contextmanager
    def _lock(self, job: Job) -> Iterator[bool]:
        db = self._database
        if not job.singleton or db is None or not db.is_postgres:
            yield True
            return
        key = zlib.crc32(f"tunewatch:{job.name}".encode())
        with db.engine.connect() as conn:
            acquired = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            try:
                yield acquired
            finally:
                if acquired:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
