"""Stage and weight changes reach every replica through the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from service.config import ArmConfig, ExperimentConfig, Stage
from service.gateway.arms import RoutingTable
from service.rollout.state import persist, sync
from service.store.db import Database
from service.store.experiments import load_states, save_state


def config() -> ExperimentConfig:
    return ExperimentConfig(name="demo", arms=[ArmConfig(name="base", upstream="a"),
                                               ArmConfig(name="fine_tuned", upstream="b")])


def test_a_change_on_one_replica_reaches_another(migrated_db: Database) -> None:
    here, there = RoutingTable([config()]), RoutingTable([config()])
    route = here.set_stage("demo", Stage.PROMOTED)
    persist(migrated_db, "demo", route.stage, route.weights)
    assert sync(migrated_db, there) == 1
    assert there.routes["demo"].stage is Stage.PROMOTED
    assert there.routes["demo"].choose("anyone").name == "fine_tuned"
    assert REGISTRY.get_sample_value("tunewatch_arm_weight", {"experiment": "demo", "arm": "base"}) == 0.0
    assert sync(migrated_db, there) == 0  # nothing new
    route = here.set_weights("demo", {"base": 0.9, "fine_tuned": 0.1})
    route = here.set_stage("demo", Stage.AB)
    persist(migrated_db, "demo", route.stage, route.weights)
    assert sync(migrated_db, there) == 1
    assert there.routes["demo"].shares == {"base": 0.9, "fine_tuned": 0.1}


def test_stage_started_at_moves_only_on_a_change(migrated_db: Database) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    first = save_state(migrated_db, "demo", "ab", {"base": 0.5, "fine_tuned": 0.5}, now=t0)
    same = save_state(migrated_db, "demo", "ab", {"fine_tuned": 0.5, "base": 0.5}, now=t0 + timedelta(hours=1))
    assert same.stage_started_at == first.stage_started_at == t0
    moved = save_state(migrated_db, "demo", "promoted", {"base": 0.5, "fine_tuned": 0.5}, now=t0 + timedelta(hours=2))
    assert moved.stage_started_at == t0 + timedelta(hours=2)
    assert load_states(migrated_db)["demo"].stage == "promoted"


def test_a_state_for_an_experiment_not_served_here_is_ignored(migrated_db: Database) -> None:
    save_state(migrated_db, "other", "promoted", {"x": 1.0})
    assert sync(migrated_db, RoutingTable([config()])) == 0
