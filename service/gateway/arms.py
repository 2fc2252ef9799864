"""Sticky arm choice: ``hash(salt, unit id)`` against the arms' weights.

The unit id is the body's ``user``, else the experiment's sticky header, else random. The hash is
BLAKE2b over the salt and the id, so every replica picks the same arm for the same user with no
shared state. An :class:`ExperimentRoute` is immutable: a stage or weight change builds a new one
and swaps it in (one assignment, safe between requests).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b

from service.config import ExperimentConfig, Stage, effective_weights

__all__ = ["ArmRoute", "ExperimentRoute", "RoutingTable", "effective_weights", "unit_position"]

_SCALE = float(2**64)


def unit_position(salt: bytes, unit_id: str) -> float:
    """Where ``unit_id`` falls in [0, 1) for an experiment salted with ``salt``; stable everywhere."""
    digest = blake2b(unit_id.encode("utf-8", "surrogatepass"), digest_size=8, key=salt[:64]).digest()
    return int.from_bytes(digest, "big") / _SCALE


@dataclass(frozen=True, slots=True)
class ArmRoute:
    """An arm as the hot path needs it: its name, its upstream's name and its sampling rate."""

    name: str
    upstream: str
    sample_rate: float


@dataclass(frozen=True, slots=True)
class ExperimentRoute:
    """An experiment's routing at one moment: stage, weights, and the cumulative table to pick from."""

    name: str
    stage: Stage
    salt: bytes
    sticky_header: bytes | None
    arms: tuple[ArmRoute, ...]
    weights: Mapping[str, float]  # configured (what the admin sets)
    shares: Mapping[str, float]  # effective at this stage
    control: str
    treatment: str
    canary_weight: float
    _cumulative: tuple[float, ...]
    _picks: tuple[ArmRoute, ...]

    @classmethod
    def build(
        cls,
        config: ExperimentConfig,
        *,
        stage: Stage | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> ExperimentRoute:
        weights = dict(weights) if weights is not None else {a.name: a.weight for a in config.arms}
        stage = stage or config.stage
        control, treatment = config.control_arm, config.treatment_arm
        shares = effective_weights(stage, weights, control, treatment, config.canary_weight)
        arms = tuple(
            ArmRoute(a.name, a.upstream, a.sample_rate if a.sample_rate is not None else config.sample_rate)
            for a in config.arms
        )
        picks = tuple(a for a in arms if shares[a.name] > 0)
        cumulative: list[float] = []
        running = 0.0
        for a in picks:
            running += shares[a.name]
            cumulative.append(running)
        cumulative[-1] = 1.0  # guard against float drift: the last arm takes the top
        header = config.sticky_header.lower().encode("latin-1") if config.sticky_header else None
        return cls(
            config.name, stage, config.salt.encode(), header, arms, weights, shares, control, treatment,
            config.canary_weight, tuple(cumulative), picks,
        )

    def choose(self, unit_id: str | None) -> ArmRoute:
        """The arm for ``unit_id`` (random when None)."""
        picks = self._picks
        if len(picks) == 1:
            return picks[0]
        pos = unit_position(self.salt, unit_id) if unit_id is not None else random.random()
        return picks[bisect_right(self._cumulative, pos)]

    def arm(self, name: str) -> ArmRoute:
        return next(a for a in self.arms if a.name == name)

    @property
    def arm_names(self) -> Sequence[str]:
        return [a.name for a in self.arms]


class RoutingTable:
    """The live routes of every experiment; admin changes swap one immutable route at a time."""

    def __init__(self, configs: Sequence[ExperimentConfig]) -> None:
        self._configs = {c.name: c for c in configs}
        self.routes: dict[str, ExperimentRoute] = {c.name: ExperimentRoute.build(c) for c in configs}

    def get(self, name: str) -> ExperimentRoute | None:
        return self.routes.get(name)

    def set_stage(self, name: str, stage: Stage) -> ExperimentRoute:
        """Move experiment ``name`` to ``stage``; raises KeyError for an unknown experiment."""
        current = self.routes[name]
        route = ExperimentRoute.build(self._configs[name], stage=stage, weights=current.weights)
        self.routes[name] = route
        return route

    def set_weights(self, name: str, weights: Mapping[str, float]) -> ExperimentRoute:
        """Replace the configured weights (applied at the ``ab`` stage); raises KeyError/ValueError."""
        current = self.routes[name]
        unknown = set(weights) - set(current.weights)
        if unknown:
            raise ValueError(f"unknown arms {sorted(unknown)}; the arms are {sorted(current.weights)}")
        merged = {**current.weights, **weights}
        if any(w < 0 for w in merged.values()) or sum(merged.values()) <= 0:
            raise ValueError("weights must be >= 0 with at least one above 0")
        route = ExperimentRoute.build(self._configs[name], stage=current.stage, weights=merged)
        self.routes[name] = route
        return route

    def state(self, name: str) -> tuple[Stage, Mapping[str, float], Mapping[str, float]] | None:
        """(stage, configured weights, effective shares) of ``name``; None when it is not served."""
        route = self.routes.get(name)
        return None if route is None else (route.stage, route.weights, route.shares)

    def apply(self, name: str, stage: Stage, weights: Mapping[str, float]) -> Mapping[str, float]:
        """Set both stage and weights (a stored state); returns the effective shares."""
        self.set_weights(name, weights)
        return self.set_stage(name, stage).shares
