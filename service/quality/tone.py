"""The custom tone/format compliance evaluator, built on azure-ai-evaluation's prompty machinery.

``ToneEvaluator`` subclasses ``azure.ai.evaluation._evaluators._common.PromptyEvaluatorBase``, a
PRIVATE class of azure-ai-evaluation: the version is pinned in pyproject.toml (1.18.10) and
``tests/unit/quality/test_evaluators.py`` checks that the parts we rely on still exist. Its prompt
is ``prompts/tone.prompty`` (``response_format: json_object``, so the reply parses like the
built-in evaluators'); the rubric comes from the experiment's ``quality.tone_rubric``.

Importing this module imports azure.ai.evaluation (~2.5 s, ~155 MB): only the evaluator factory
in ``evaluators.py`` imports it, lazily, never the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azure.ai.evaluation._evaluators._common import PromptyEvaluatorBase

__all__ = ["PROMPTY_FILE", "ToneEvaluator"]

PROMPTY_FILE = Path(__file__).with_name("prompts") / "tone.prompty"


class ToneEvaluator(PromptyEvaluatorBase[Any]):
    """Scores 1-5 how far a response follows the house tone/format ``rubric``.

    Call it like the built-in evaluators: ``ToneEvaluator(model_config, rubric=[...])(query=...,
    response=...)`` returns ``tone``, ``tone_score``, ``tone_reason``, ``tone_result`` ... keys.
    """

    _RESULT_KEY = "tone"

    def __init__(
        self, model_config: dict[str, Any], *, rubric: Sequence[str], threshold: float = 3.0
    ) -> None:
        if not rubric:
            raise ValueError("the tone rubric needs at least one item")
        # One requirement per line: the judge (and the simulated one) reads them as a list.
        self._rubric = "\n".join(f"- {' '.join(item.split())}" for item in rubric)
        super().__init__(
            model_config=model_config,
            prompty_file=str(PROMPTY_FILE),
            result_key=self._RESULT_KEY,
            threshold=threshold,  # type: ignore[arg-type]  # annotated int, any number works
            _higher_is_better=True,
        )

    def __call__(self, *, query: str, response: str) -> dict[str, Any]:
        """Evaluate one response (blocking: the library runs its own event loop)."""
        result: dict[str, Any] = super().__call__(query=query, response=response)
        return result

    async def _do_eval(self, eval_input: dict[str, Any]) -> dict[str, Any]:
        eval_input = {**eval_input, "rubric": self._rubric}
        result: dict[str, Any] = await super()._do_eval(eval_input)
        return result
