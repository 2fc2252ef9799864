"""The ``quality`` section of an experiment: the judge, the evaluators, their thresholds."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from service.config._base import Strict as _Strict
from service.config.upstreams import UpstreamKind

__all__ = ["DEMO_TONE_RUBRIC", "EvaluatorName", "JudgeConfig", "QualityConfig"]

#: the study guide's house format for the insurance assistant
DEMO_TONE_RUBRIC = (
    "empathy statement: acknowledges the customer's situation (e.g. 'I understand')",
    "explanation: explains the answer in plain words",
    "next steps: ends with explicit 'Next steps' the customer can take",
    "insurance terminology: uses precise insurance terminology (e.g. deductible, subrogation, premium)",
)


class EvaluatorName(StrEnum):
    """The evaluators the scorer can run; also the ``evaluator`` metric label and stored value."""

    RELEVANCE = "relevance"
    COHERENCE = "coherence"
    FLUENCY = "fluency"
    GROUNDEDNESS = "groundedness"
    TONE = "tone"


class JudgeConfig(_Strict):
    """The judge deployment: Azure OpenAI (endpoint + deployment) or OpenAI-compatible (base_url + model)."""

    kind: UpstreamKind = UpstreamKind.OPENAI
    base_url: str | None = None
    model: str | None = None
    endpoint: str | None = None
    deployment: str | None = None
    #: Azure only; None keeps the library's default (2024-02-15-preview)
    api_version: str | None = None
    #: the environment variable holding the key; required for Azure
    api_key_env: str | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> JudgeConfig:
        if self.kind is UpstreamKind.AZURE:
            if not self.endpoint or not self.deployment:
                raise ValueError("an azure judge needs `endpoint` and `deployment`")
            if not self.api_key_env:
                raise ValueError(
                    "an azure judge needs `api_key_env` (else the library probes for cloud credentials)"
                )
        elif not self.base_url or not self.model:
            raise ValueError("an openai judge needs `base_url` (ending in /v1) and `model`")
        for url in (self.base_url, self.endpoint):
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return self


class QualityConfig(_Strict):
    """Per experiment: what to score, against which judge, and the scorer's limits.

    Times are seconds. ``timeout_s`` bounds one evaluator call end to end (the library's own
    per-attempt timeout is set to it too); ``library_retries`` is how many times the library may
    retry a 429/5xx inside that bound (0: the scorer retries the sample later, with backoff).
    """

    evaluators: list[EvaluatorName] = Field(
        default_factory=lambda: [
            EvaluatorName.RELEVANCE,
            EvaluatorName.COHERENCE,
            EvaluatorName.FLUENCY,
            EvaluatorName.GROUNDEDNESS,
            EvaluatorName.TONE,
        ],
        min_length=1,
    )
    #: pass threshold per evaluator on the 1-5 scale; missing ones use ``default_threshold``
    thresholds: dict[EvaluatorName, Annotated[float, Field(ge=1, le=5)]] = Field(default_factory=dict)
    default_threshold: float = Field(3.0, ge=1, le=5)
    tone_rubric: list[str] = Field(default_factory=lambda: list(DEMO_TONE_RUBRIC), min_length=1)
    judge: JudgeConfig
    #: judge calls in flight per experiment: rate x judge latency (25 evaluations/s x ~1 s needs ~25)
    concurrency: int = Field(32, ge=1, le=256)
    timeout_s: float = Field(30.0, gt=0, le=600)
    library_retries: int = Field(0, ge=0, le=10)
    max_attempts: int = Field(5, ge=1, le=50)
    #: backoff before attempt n+1: ``min(backoff_max_s, backoff_base_s * 2**(n-1))``
    backoff_base_s: float = Field(30.0, ge=0)
    backoff_max_s: float = Field(1800.0, ge=0)
    batch_size: int = Field(20, ge=1, le=1000)
    #: how long a claimed sample stays claimed before another scorer may take it over; it must
    #: outlast the judging of a whole batch (checked below), or a slow batch would be scored twice
    lease_s: float = Field(600.0, gt=0)

    @model_validator(mode="after")
    def _check_lease(self) -> QualityConfig:
        waves = -(-self.batch_size * len(self.evaluators) // self.concurrency) + 1
        if self.lease_s < waves * self.timeout_s:
            raise ValueError(
                f"lease_s ({self.lease_s}) must exceed the worst-case time to judge a batch "
                f"({waves} waves x timeout_s {self.timeout_s} = {waves * self.timeout_s} s): "
                "raise lease_s or concurrency, or lower batch_size or timeout_s"
            )
        return self

    def threshold(self, evaluator: EvaluatorName) -> float:
        return self.thresholds.get(evaluator, self.default_threshold)


