"""low_confidence: logprobs first, the judge's scores otherwise, None without either."""

from __future__ import annotations

import math

import pytest

from service.drift.confidence import low_confidence


@pytest.mark.parametrize(("logprob", "scores", "expected"), [
    (-0.2, None, False),
    (-1.5, None, True),
    (-1.0, None, False),  # at the threshold is not below it
    (-0.2, {"relevance": 1.0}, False),  # logprobs win over the judge
    (None, {"relevance": 2.0, "coherence": 3.0}, True),
    (None, {"relevance": 4.0, "coherence": 3.0}, False),
    (math.nan, {"relevance": 2.0}, True),  # a NaN logprob is no information
    (None, {"relevance": math.nan}, None),
    (None, {}, None),
    (None, None, None),
])
def test_low_confidence(logprob: float | None, scores: dict[str, float] | None,
                        expected: bool | None) -> None:
    assert low_confidence(logprob, scores) is expected


def test_thresholds_are_parameters() -> None:
    assert low_confidence(-0.5, None, logprob_threshold=-0.4) is True
    assert low_confidence(None, {"fluency": 4.0}, score_threshold=4.5) is True
