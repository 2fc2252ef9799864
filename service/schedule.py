"""The scheduled jobs of the service, each given its dependencies: what ``app.py`` schedules.

scorer (claims samples: every replica helps), out-of-domain scoring of recorded queries,
detectors and alerts (singletons: one replica at a time), retention (singleton).
"""

from __future__ import annotations

from service.config import ExperimentsFile, Settings
from service.jobs import Job
from service.rollout.state import RouteControl, sync
from service.store.db import Database
from service.store.retention import purge

__all__ = ["build_jobs"]


def build_jobs(
    settings: Settings, experiments: ExperimentsFile, database: Database, routing: RouteControl
) -> list[Job]:
    """Every job this service runs on a schedule."""
    jobs = [
        # every replica polls the stored stage and weights (changes made through another replica)
        Job("rollout_sync", lambda: sync(database, routing), interval_s=5.0),
        Job("retention", lambda: purge(database, settings.sample_retention_days, settings.request_retention_days),
            interval_s=3600.0, singleton=True),
    ]
    return jobs
