"""The experiments file (YAML): upstreams, experiments and their arms, quality, alerts.

It never holds a secret: an upstream names the environment variable its key lives in
(``api_key_env``). A bad file fails at start with the file, the key and what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, model_validator

from service.config._base import Strict as _Strict
from service.config.alerts import AlertsConfig
from service.config.quality import QualityConfig
from service.config.upstreams import ArmConfig, Stage, UpstreamConfig
from service.errors import ConfigError

__all__ = ["ExperimentConfig", "ExperimentsFile", "load_experiments", "parse_experiments"]

class ExperimentConfig(_Strict):
    """An experiment is what clients name in ``model``; its arms are upstream deployments."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
    stage: Stage = Stage.AB
    arms: list[ArmConfig] = Field(min_length=1, max_length=8)
    control: str | None = None
    sticky_header: str | None = "x-session-id"
    salt: str = ""
    sample_rate: float = Field(0.1, ge=0, le=1)
    canary_weight: float = Field(0.05, ge=0, le=1)
    #: LLM-as-judge scoring of the sampled requests; None: not scored
    quality: QualityConfig | None = None
    #: replace emails, phone, card and account numbers in stored text (sampled messages, answers, queries)
    redact: bool = False
    #: what the fine-tuning job cost, for the report's payback time
    fine_tuning_job_cost_usd: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check_arms(self) -> ExperimentConfig:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique, got {names}")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control {self.control!r} is not one of the arms {names}")
        if sum(a.weight for a in self.arms) <= 0:
            raise ValueError("at least one arm needs a weight above 0")
        return self

    @property
    def control_arm(self) -> str:
        return self.control or self.arms[0].name

    @property
    def treatment_arm(self) -> str:
        """The arm under test: the first arm that is not the control (the control if alone)."""
        return next((a.name for a in self.arms if a.name != self.control_arm), self.control_arm)


class ExperimentsFile(_Strict):
    """The experiments YAML. Later sections (judge, reference, alerts) are added by their owners."""

    upstreams: dict[str, UpstreamConfig] = Field(min_length=1)
    experiments: list[ExperimentConfig] = Field(min_length=1)
    alerts: AlertsConfig = AlertsConfig()

    @model_validator(mode="after")
    def _check_refs(self) -> ExperimentsFile:
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment names must be unique, got {names}")
        for e in self.experiments:
            for a in e.arms:
                if a.upstream not in self.upstreams:
                    raise ValueError(
                        f"experiment {e.name!r} arm {a.name!r} names upstream {a.upstream!r}, "
                        f"which is not under `upstreams` ({sorted(self.upstreams)})"
                    )
        return self

    def experiment(self, name: str) -> ExperimentConfig | None:
        return next((e for e in self.experiments if e.name == name), None)


def _secret_hint(loc: tuple[Any, ...], msg: str) -> str:
    if loc and loc[-1] in {"api_key", "key", "password", "token"}:
        return ("secrets are never read from the file: put the key in an environment variable "
                "and name it with `api_key_env`")
    return msg


def parse_experiments(data: Any, *, source: str = "<experiments>") -> ExperimentsFile:
    """Validate a parsed experiments document; raises ``ConfigError`` naming the key to fix."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must be a YAML mapping with `upstreams` and `experiments`")
    try:
        return ExperimentsFile.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{source}: {where}: {_secret_hint(err['loc'], err['msg'])}")
        raise ConfigError("\n".join(lines)) from None


def load_experiments(path: Path) -> ExperimentsFile:
    """Read and validate the experiments file at ``path`` (blocking file read: call at startup)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiments file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_experiments(data, source=str(path))


