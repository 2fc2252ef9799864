"""Process settings (``TUNEWATCH_*``) and the experiments file (YAML).

``Settings`` is built once by the CLI or a test fixture and passed down; each component takes its
slice. The experiments file describes upstreams, experiments and their arms; it never holds a
secret: an upstream names the environment variable its key lives in (``api_key_env``), and
:func:`load_experiments` reads it. A bad file fails at start with the file, the key and what to fix.

This is the only module that reads ``os.environ``. It imports nothing of ours but ``errors``.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.errors import ConfigError

__all__ = [
    "ArmConfig",
    "ExperimentConfig",
    "ExperimentsFile",
    "Price",
    "Settings",
    "Stage",
    "Timeouts",
    "UpstreamConfig",
    "UpstreamKind",
    "load_experiments",
    "parse_experiments",
    "read_env",
]

_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "xxx", "todo"}


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        return "secrets are never read from the file: put the key in an environment variable and name it with `api_key_env`"
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


def read_env(name: str) -> SecretStr | None:
    """The secret held by environment variable ``name`` (an upstream's ``api_key_env``)."""
    value = os.environ.get(name)
    return SecretStr(value) if value else None


def _split_keys(value: Any) -> Any:
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    return value


class Settings(BaseSettings):
    """Process settings, from ``TUNEWATCH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TUNEWATCH_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    database_url: str = "sqlite:///./tunewatch.db"
    auto_migrate: bool = True
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    experiments_file: Path | None = None
    #: keyed hash of unit ids (user / session) before they are stored; set it in production
    unit_hash_key: SecretStr | None = None
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    recorder_queue_size: int = Field(50_000, ge=1)
    recorder_batch_size: int = Field(500, ge=1)
    recorder_flush_interval_s: float = Field(0.5, gt=0)
    shutdown_grace_s: float = Field(10.0, ge=0)
    sample_retention_days: int = Field(30, ge=1)
    request_retention_days: int = Field(90, ge=1)
    scheduler_enabled: bool = True
    log_level: str = "INFO"

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _split_keys(value)

    @field_validator("api_keys")
    @classmethod
    def _no_placeholder_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            if key.get_secret_value().lower() in _PLACEHOLDERS:
                raise ValueError("TUNEWATCH_API_KEYS holds a placeholder; set real keys")
        return value

    @field_validator("admin_key")
    @classmethod
    def _no_placeholder_admin(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None  # set but empty: no admin key
        if value is not None and value.get_secret_value().lower() in _PLACEHOLDERS:
            raise ValueError("TUNEWATCH_ADMIN_KEY is a placeholder; set a real key")
        return value

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build from the environment; raises ``ConfigError`` naming the variable to fix."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            lines = [
                f"TUNEWATCH_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
            ]
            raise ConfigError("; ".join(lines)) from None

