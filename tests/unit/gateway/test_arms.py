"""Sticky arm choice: stable per unit, split within a binomial bound of the weights."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from service.config import ArmConfig, ExperimentConfig, Stage
from service.gateway.arms import ExperimentRoute, RoutingTable


def _config(w_base: float, salt: str = "s", stage: Stage = Stage.AB) -> ExperimentConfig:
    return ExperimentConfig(
        name="demo", stage=stage, salt=salt,
        arms=[ArmConfig(name="base", upstream="u1", weight=w_base),
              ArmConfig(name="fine_tuned", upstream="u2", weight=1 - w_base)],
    )


@settings(deadline=None)
@given(unit=st.text(min_size=1, max_size=40), salt=st.text(max_size=20),
       w=st.floats(0.01, 0.99), w2=st.floats(0.01, 0.99))
def test_same_unit_same_arm_for_any_salt_and_weights(unit: str, salt: str, w: float, w2: float) -> None:
    route = ExperimentRoute.build(_config(w, salt))
    again = ExperimentRoute.build(_config(w, salt))  # another replica, built independently
    assert route.choose(unit) == again.choose(unit) == route.choose(unit)
    # moving weight towards an arm never moves a unit away from it (monotone assignment)
    if w2 >= w and route.choose(unit).name == "base":
        assert ExperimentRoute.build(_config(w2, salt)).choose(unit).name == "base"


def test_split_over_many_units_is_within_a_binomial_bound() -> None:
    n, p = 20_000, 0.3
    route = ExperimentRoute.build(_config(p))
    hits = sum(route.choose(f"user-{i}").name == "base" for i in range(n))
    bound = 4.5 * math.sqrt(n * p * (1 - p))  # ~1e-5 two-sided
    assert abs(hits - n * p) < bound


def test_stages_move_traffic() -> None:
    table = RoutingTable([_config(0.5)])
    assert table.set_stage("demo", Stage.PROMOTED).choose("alice").name == "fine_tuned"
    assert table.set_stage("demo", Stage.ROLLED_BACK).choose("alice").name == "base"
    shadow = table.set_stage("demo", Stage.SHADOW)
    assert shadow.shares == {"base": 1.0, "fine_tuned": 0.0}
    canary = table.set_stage("demo", Stage.CANARY)
    assert canary.shares["fine_tuned"] == 0.05


def test_weight_change_keeps_stage_and_rejects_unknown_arms() -> None:
    table = RoutingTable([_config(0.5)])
    route = table.set_weights("demo", {"base": 0.0, "fine_tuned": 1.0})
    assert route.stage is Stage.AB
    assert all(route.choose(f"u{i}").name == "fine_tuned" for i in range(100))
    try:
        table.set_weights("demo", {"nope": 1.0})
    except ValueError as exc:
        assert "unknown arms" in str(exc)
    else:
        raise AssertionError("an unknown arm was accepted")
