"""Upstream deployments and arms of the experiments file."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from service.config._base import Strict as _Strict

__all__ = ["ArmConfig", "Price", "Stage", "Timeouts", "UpstreamConfig", "UpstreamKind", "effective_weights"]

class Stage(StrEnum):
    """Deployment stages of an experiment (the study guide's dev → production path)."""

    SHADOW = "shadow"  # the control serves everyone; the treatment gets a mirrored copy
    CANARY = "canary"  # a small configured share goes to the treatment
    AB = "ab"  # the configured weights
    PROMOTED = "promoted"  # the treatment serves everyone
    ROLLED_BACK = "rolled_back"  # the control serves everyone


class UpstreamKind(StrEnum):
    OPENAI = "openai"
    AZURE = "azure"


class Price(_Strict):
    """USD per 1,000 tokens."""

    input_per_1k: float = Field(0.0, ge=0)
    output_per_1k: float = Field(0.0, ge=0)


class Timeouts(_Strict):
    """Seconds; ``read_s`` bounds the wait for each chunk, so size it for the slowest token."""

    connect_s: float = Field(5.0, gt=0)
    read_s: float = Field(120.0, gt=0)
    pool_s: float = Field(5.0, gt=0)


class UpstreamConfig(_Strict):
    """One deployment: Azure OpenAI (endpoint + deployment) or OpenAI-compatible (base_url + model)."""

    kind: UpstreamKind = UpstreamKind.OPENAI
    base_url: str | None = None
    endpoint: str | None = None
    model: str | None = None
    deployment: str | None = None
    api_version: str = "2024-06-01"
    api_key_env: str | None = None
    #: the embeddings model (OpenAI) or deployment (Azure) that ``/v1/embeddings`` goes to
    embedding_model: str | None = None
    price: Price = Price()
    timeouts: Timeouts = Timeouts()
    max_connections: int = Field(256, ge=1, le=10_000)

    @model_validator(mode="after")
    def _check_kind(self) -> UpstreamConfig:
        if self.kind is UpstreamKind.AZURE:
            if not self.endpoint or not self.deployment:
                raise ValueError("an azure upstream needs `endpoint` and `deployment`")
        elif not self.base_url or not self.model:
            raise ValueError("an openai upstream needs `base_url` (ending in /v1) and `model`")
        for url in (self.base_url, self.endpoint):
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
            if url and "@" in url.split("//", 1)[1].split("/", 1)[0]:
                raise ValueError("credentials in the URL are refused; use api_key_env")
        return self

    @property
    def target_model(self) -> str:
        """The name written into the forwarded body's ``model``."""
        return self.deployment if self.kind is UpstreamKind.AZURE else self.model  # type: ignore[return-value]  # validated above


class ArmConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    upstream: str
    weight: float = Field(0.5, ge=0, le=1)
    sample_rate: float | None = Field(None, ge=0, le=1)


def effective_weights(
    stage: Stage, weights: Mapping[str, float], control: str, treatment: str, canary_weight: float
) -> dict[str, float]:
    """The share of traffic each arm gets at ``stage`` (sums to 1)."""
    share = dict.fromkeys(weights, 0.0)
    if stage in (Stage.SHADOW, Stage.ROLLED_BACK) or control == treatment:
        share[control] = 1.0
    elif stage is Stage.PROMOTED:
        share[treatment] = 1.0
    elif stage is Stage.CANARY:
        share[control] = 1.0 - canary_weight
        share[treatment] = canary_weight
    else:
        total = sum(weights.values())
        share = {arm: w / total for arm, w in weights.items()}
    return share
