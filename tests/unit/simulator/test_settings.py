"""SimConfig: checked values, run-time overrides."""

from __future__ import annotations

import pytest

from service.simulator import ConfigOverrideError, SimConfig
from service.simulator.settings import override


def test_defaults_and_timing() -> None:
    config = SimConfig()
    assert config.timing("fine_tuned").ttft_s < config.timing("base").ttft_s
    assert config.timing("fine_tuned").tokens_per_s > config.timing("base").tokens_per_s


@pytest.mark.parametrize(
    "kwargs",
    [{"rate_500": 1.5}, {"rate_429": -0.1}, {"time_scale": -1}, {"hang_s": -1}, {"base_tokens_per_s": 0}],
)
def test_bad_values_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SimConfig(**kwargs)  # type: ignore[arg-type]


def test_override_converts_and_checks() -> None:
    config = override(SimConfig(seed=3), {"rate_500": 1, "fine_tuned_ttft_s": 2, "require_key": "k"})
    assert (config.rate_500, config.fine_tuned_ttft_s, config.require_key, config.seed) == (1.0, 2.0, "k", 3)
    assert isinstance(config.rate_500, float)


@pytest.mark.parametrize(
    "changes",
    [
        {"nope": 1},
        {"rate_500": "high"},
        {"rate_500": True},
        {"rate_500": 2},
        {"seed": 1.5},
        {"require_key": 5},
    ],
)
def test_override_refuses_bad_changes(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigOverrideError):
        override(SimConfig(), changes)
