"""Low-confidence answers: the upstream's token logprobs when it returned them, else the judge.

Pure function, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["low_confidence"]


def low_confidence(
    logprob_mean: float | None,
    judge_scores: Mapping[str, float] | None,
    logprob_threshold: float = -1.0,
    score_threshold: float = 3.0,
) -> bool | None:
    """Whether an answer was given with low confidence; None when there is nothing to tell.

    ``logprob_mean`` (nats per token, the mean of the completion's token logprobs) wins when it
    is a finite number: low when below ``logprob_threshold`` (-1.0 ≈ the model gave its chosen
    tokens ~37 % on average). Otherwise the judge's 1-5 scores of a sampled request: low when
    their mean is below ``score_threshold``. Non-finite values are ignored.
    """
    if logprob_mean is not None and math.isfinite(logprob_mean):
        return logprob_mean < logprob_threshold
    if judge_scores:
        values = [value for value in judge_scores.values() if math.isfinite(value)]
        if values:
            return sum(values) / len(values) < score_threshold
    return None
