"""``SimConfig``: the knobs of one simulated upstream (latency model, fault rates, auth).

A frozen value; the running app keeps the current one and ``POST /_sim/config`` swaps it for a copy
with some fields replaced (:func:`override`), so tests change behaviour without a restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PROFILES", "ConfigOverrideError", "SimConfig", "Timing", "override"]

#: the profiles a simulator can play
PROFILES = ("base", "fine_tuned", "judge")


@dataclass(frozen=True, slots=True)
class Timing:
    """Latency of one profile at ``time_scale`` 1: median time to first token and decode speed."""

    ttft_s: float
    tokens_per_s: float


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Configuration of a simulated upstream.

    Latency: a request's time to first token is lognormal around ``<profile>_ttft_s`` (spread
    ``latency_sigma``), then content arrives at about ``<profile>_tokens_per_s``; every simulated
    duration is multiplied by ``time_scale`` (0: answer at once, tests; 1: realistic, demo). At
    ``time_scale`` 1 the study guide's P95 latencies come out on the demo queries: 2.8 s for base,
    1.2 s for the fine-tune (its answers are shorter, too). Fault injection (``#sim:...`` markers
    and ``hang_s``) is never scaled.

    Fault rates are probabilities per chat completion request, drawn from a generator seeded with
    ``seed`` (``rate_midstream_reset`` applies to streamed requests only). ``require_key``, when
    set, is the API key clients must send (``Authorization: Bearer`` or Azure's ``api-key``).
    """

    seed: int = 0
    time_scale: float = 1.0
    base_ttft_s: float = 0.4
    base_tokens_per_s: float = 175.0
    fine_tuned_ttft_s: float = 0.15
    fine_tuned_tokens_per_s: float = 250.0
    judge_ttft_s: float = 0.3
    judge_tokens_per_s: float = 120.0
    #: sigma of the lognormal latency factor (0: every request takes the median)
    latency_sigma: float = 0.3
    rate_429: float = 0.0
    #: the ``retry-after`` header of a 429, in seconds (never scaled: the client obeys it)
    retry_after_s: float = 1.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_reset: float = 0.0
    rate_midstream_reset: float = 0.0
    #: how long a timeout fault hangs before closing the connection (seconds, never scaled)
    hang_s: float = 30.0
    require_key: str | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("rate_") and not 0.0 <= value <= 1.0:
                raise ValueError(f"SimConfig.{f.name} must be a probability in [0, 1], got {value!r}")
            if f.name.endswith("_s") and value < 0:
                raise ValueError(f"SimConfig.{f.name} must be >= 0 seconds, got {value!r}")
        if self.time_scale < 0 or self.latency_sigma < 0:
            raise ValueError("SimConfig.time_scale and latency_sigma must be >= 0")
        for profile in PROFILES:
            if getattr(self, f"{profile}_tokens_per_s") <= 0:
                raise ValueError(f"SimConfig.{profile}_tokens_per_s must be > 0")

    def timing(self, profile: str) -> Timing:
        """The unscaled latency parameters of ``profile`` (one of :data:`PROFILES`)."""
        return Timing(getattr(self, f"{profile}_ttft_s"), getattr(self, f"{profile}_tokens_per_s"))


class ConfigOverrideError(ValueError):
    """A ``/_sim/config`` body names an unknown field or gives a value of the wrong type."""


def override(config: SimConfig, changes: Mapping[str, Any]) -> SimConfig:
    """A copy of ``config`` with ``changes`` applied (JSON values, checked).

    Raises:
        ConfigOverrideError: unknown field, wrong type, or a value ``SimConfig`` refuses.
    """
    fields = {f.name: f for f in dataclasses.fields(SimConfig)}
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in fields:
            raise ConfigOverrideError(f"unknown SimConfig field {name!r}; known: {', '.join(sorted(fields))}")
        if name == "require_key":
            if value is not None and not isinstance(value, str):
                raise ConfigOverrideError("require_key must be a string or null")
        elif name == "seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigOverrideError("seed must be an integer")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigOverrideError(f"{name} must be a number")
        else:
            value = float(value)
        clean[name] = value
    try:
        return dataclasses.replace(config, **clean)
    except ValueError as exc:
        raise ConfigOverrideError(str(exc)) from exc
