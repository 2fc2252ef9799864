"""Stage and weight changes that every replica sees: persisted, then polled.

The admin API changes a replica's routing at once and stores the new state; every replica runs
:func:`sync` every few seconds and applies what another replica stored, so the whole fleet
converges without shared memory. The gateway is reached through the :class:`RouteControl`
protocol (this package must not import the hot path).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from service.config import Stage
from service.store.db import Database
from service.store.experiments import ExperimentState, load_states, save_state
from service.telemetry.metrics import ARM_WEIGHT

__all__ = ["RouteControl", "persist", "publish_shares", "sync"]

log = logging.getLogger(__name__)


class RouteControl(Protocol):
    """What rollout needs of the live routing table."""

    def state(self, name: str) -> tuple[Stage, Mapping[str, float], Mapping[str, float]] | None:
        """(stage, configured weights, effective shares) of experiment ``name``; None if unknown."""

    def apply(self, name: str, stage: Stage, weights: Mapping[str, float]) -> Mapping[str, float]:
        """Route ``name`` at ``stage`` with ``weights``; returns the effective shares."""


def publish_shares(experiment: str, shares: Mapping[str, float]) -> None:
    """Set ``tunewatch_arm_weight`` to the effective shares."""
    for arm, share in shares.items():
        ARM_WEIGHT.labels(experiment, arm).set(share)


def persist(db: Database, name: str, stage: Stage, weights: Mapping[str, float]) -> ExperimentState:
    """Store a change made on this replica, for the others (blocking)."""
    return save_state(db, name, stage.value, dict(weights))


def sync(db: Database, control: RouteControl) -> int:
    """Apply the stored states that differ from this replica's routing; returns how many changed."""
    changed = 0
    for name, stored in load_states(db).items():
        current = control.state(name)
        if current is None:
            continue  # an experiment this replica does not serve
        stage, weights, _ = current
        if stored.stage == stage.value and stored.weights == dict(weights):
            continue
        try:
            shares = control.apply(name, Stage(stored.stage), stored.weights)
        except (KeyError, ValueError) as exc:
            log.warning("rollout.bad_stored_state", extra={"experiment": name, "error": str(exc)})
            continue
        publish_shares(name, shares)
        log.info("rollout.state_applied", extra={"experiment": name, "stage": stored.stage})
        changed += 1
    return changed
