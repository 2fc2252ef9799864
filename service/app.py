"""``create_app(settings, experiments)``: the one place that wires components together.

The returned ASGI app is the :class:`Gateway` (the hot path) with the FastAPI app (admin, feedback,
metrics, health) behind it. FastAPI's lifespan owns the background work, entered in order and left
in reverse through an ``AsyncExitStack``: the database (migrated), the recorder's writer, the
scheduler; on the way out the upstream pools close and the recorder is flushed within the grace
period. Importing this module starts nothing.
"""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI

from service.api import admin, feedback, health, reports
from service.api import alerts as alerts_api
from service.api.deps import Components
from service.config import ExperimentsFile, Settings, read_env
from service.errors import ConfigError
from service.gateway.arms import RoutingTable
from service.gateway.auth import KeyChecker
from service.gateway.errors import install_handlers
from service.gateway.proxy import Gateway
from service.gateway.upstream import Upstream
from service.jobs import JobRunner
from service.rollout.state import publish_shares, sync
from service.schedule import build_jobs
from service.store import migrate
from service.store.db import Database
from service.store.sink import RequestSink
from service.telemetry.metrics import HOT_PATH
from service.telemetry.recorder import BatchSink, Recorder

__all__ = ["build_service", "components_of", "create_app"]

log = logging.getLogger(__name__)

#: hooks run in the lifespan after the recorder starts: each gets the components and the exit stack
StartHook = Callable[[Components, AsyncExitStack], Any]


def create_app(
    settings: Settings,
    experiments: ExperimentsFile,
    *,
    database: Database | None = None,
    sink: BatchSink | None = None,
    start_hooks: list[StartHook] | None = None,
    table: RoutingTable | None = None,
) -> Gateway:
    """Build the service. ``sink`` receives the recorder's batches (default: none, records dropped)."""
    upstreams = {
        name: Upstream(name, cfg, read_env(cfg.api_key_env) if cfg.api_key_env else None)
        for name, cfg in experiments.upstreams.items()
    }
    table = table or RoutingTable(experiments.experiments)
    recorder = Recorder(
        sink, max_queue=settings.recorder_queue_size, batch_size=settings.recorder_batch_size,
        flush_interval_s=settings.recorder_flush_interval_s,
    )
    comps = Components(
        settings=settings, experiments=experiments, table=table, recorder=recorder,
        client_keys=KeyChecker(settings.api_keys, "API key"),
        admin_keys=KeyChecker([settings.admin_key], "admin key") if settings.admin_key else None,
        database=database,
    )
    gateway_ref: list[Gateway] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if database is not None:
                stack.callback(database.dispose)  # last: after the recorder's final flush
            recorder.start()
            stack.push_async_callback(_close_recorder, recorder, settings.shutdown_grace_s)
            stack.push_async_callback(gateway_ref[0].close)
            if database is not None:  # the stage and weights other replicas stored win over the file
                await anyio.to_thread.run_sync(sync, database, table)
            for route in table.routes.values():
                publish_shares(route.name, route.shares)
            for hook in start_hooks or ():
                result = hook(comps, stack)
                if hasattr(result, "__await__"):
                    await result
            # Everything built so far lives as long as the process: move it out of the collector's
            # sight, so a full collection walks only what requests allocate (the p99 otherwise carries
            # tens of milliseconds of walking the imported libraries' objects).
            gc.collect()
            gc.freeze()
            log.info("service.started", extra={"experiments": sorted(table.routes)})
            yield
            log.info("service.stopping")

    api = FastAPI(title="tunewatch", lifespan=lifespan, docs_url=None, redoc_url=None)
    api.state.components = comps
    install_handlers(api)
    api.include_router(health.router)
    api.include_router(admin.router)
    api.include_router(feedback.router)
    api.include_router(reports.router)
    api.include_router(alerts_api.router)
    gateway = Gateway(
        fallback=api, table=table, upstreams=upstreams, client_keys=comps.client_keys, recorder=recorder,
        metrics=HOT_PATH, max_body_bytes=settings.max_body_bytes,
    )
    gateway_ref.append(gateway)
    return gateway


def build_service(
    settings: Settings, experiments: ExperimentsFile, *, start_hooks: list[StartHook] | None = None
) -> Gateway:
    """The whole service: the app plus its database (migrated at start), recorder sink and jobs.

    Blocking (opens the database, may migrate it): call it before the event loop runs.
    """
    database = Database(settings.database_url)
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    elif not migrate.is_up_to_date(settings.database_url):
        raise ConfigError("the database schema is not at the current revision: run `tunewatch migrate` "
                          "(or set TUNEWATCH_AUTO_MIGRATE=true)")
    sink = RequestSink(database, unit_hash_key(settings),
                       redact=[e.name for e in experiments.experiments if e.redact])
    table = RoutingTable(experiments.experiments)
    hooks = list(start_hooks or ())
    if settings.scheduler_enabled:
        jobs = build_jobs(settings, experiments, database, table)
        hooks.append(_scheduler_hook(JobRunner(jobs, database)))
    return create_app(settings, experiments, database=database, sink=sink, start_hooks=hooks, table=table)


def unit_hash_key(settings: Settings) -> bytes:
    """The key of the unit-id hash: ``TUNEWATCH_UNIT_HASH_KEY``, else derived from the admin and client
    keys (stable across replicas that share them; set the variable to keep hashes across key rotations)."""
    if settings.unit_hash_key is not None:
        return settings.unit_hash_key.get_secret_value().encode()
    material = [settings.admin_key, *settings.api_keys]
    joined = "\0".join(k.get_secret_value() for k in material if k is not None)
    return hashlib.sha256(b"tunewatch-unit-hash\0" + joined.encode()).digest()


def _scheduler_hook(runner: JobRunner) -> StartHook:
    def hook(comps: Components, stack: AsyncExitStack) -> None:
        comps.extras["jobs"] = runner
        runner.start()
        stack.callback(runner.stop)

    return hook


def components_of(gateway: Gateway) -> Components:
    """The components behind a gateway built by :func:`create_app` (CLI and tests)."""
    comps: Components = gateway.fallback.state.components  # type: ignore[attr-defined]  # a FastAPI app
    return comps


async def _close_recorder(recorder: Recorder, grace_s: float) -> None:
    """Write what is queued (off the loop: it joins the writer thread)."""
    left = await anyio.to_thread.run_sync(recorder.close, grace_s)
    if left:
        log.error("recorder.records_lost_at_shutdown", extra={"records": left})
