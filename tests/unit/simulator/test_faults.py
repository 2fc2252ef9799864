"""Fault markers and seeded fault rates."""

from __future__ import annotations

import random

import pytest

from service.simulator import SimConfig
from service.simulator.faults import Fault, FaultSpec, draw, spec_of


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("What is a deductible?", FaultSpec()),
        ("x #sim:429", FaultSpec(Fault.RATE_LIMIT)),
        ("#sim:500 first", FaultSpec(Fault.SERVER_ERROR)),
        ("x #sim:timeout", FaultSpec(Fault.TIMEOUT)),
        ("x #sim:reset", FaultSpec(Fault.RESET)),
        ("x #sim:midstream-reset", FaultSpec(Fault.MIDSTREAM_RESET)),
        ("x #sim:garbage", FaultSpec(Fault.GARBAGE)),
        ("x #sim:slow=2.5", FaultSpec(None, 2.5)),
        ("#sim:slow=3 #sim:500 #sim:429", FaultSpec(Fault.SERVER_ERROR, 3.0)),
        ("#sim:unknown", FaultSpec()),
    ],
)
def test_markers(text: str, spec: FaultSpec) -> None:
    assert spec_of(text) == spec


def test_no_rates_no_draw() -> None:
    rng = random.Random(0)
    assert all(draw(rng, SimConfig(), stream=True) is None for _ in range(100))
    assert rng.random() == random.Random(0).random()  # nothing was drawn


def test_rates_are_honoured_and_seeded() -> None:
    config = SimConfig(rate_429=0.2, rate_500=0.2, rate_midstream_reset=0.3)
    first = [draw(random.Random(1), config, stream=True) for _ in range(3)]
    assert first == [draw(random.Random(1), config, stream=True) for _ in range(3)]
    rng = random.Random(5)
    counts = {f: 0 for f in [*Fault, None]}
    for _ in range(4000):
        counts[draw(rng, config, stream=True)] += 1
    assert 600 < counts[Fault.RATE_LIMIT] < 1000 and 600 < counts[Fault.SERVER_ERROR] < 1000
    assert 1000 < counts[Fault.MIDSTREAM_RESET] < 1400 and counts[Fault.TIMEOUT] == 0
    assert all(draw(rng, SimConfig(rate_midstream_reset=1.0), stream=False) is None for _ in range(50))
    assert all(draw(rng, SimConfig(rate_reset=1.0), stream=False) is Fault.RESET for _ in range(50))
