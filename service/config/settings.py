"""Process settings, from ``TUNEWATCH_*`` environment variables; the only reader of ``os.environ``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.errors import ConfigError

__all__ = ["Settings", "read_env"]

_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "xxx", "todo"}


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
    scorer_interval_s: float = Field(5.0, gt=0)
    detectors_interval_s: float = Field(60.0, gt=0)
    ood_interval_s: float = Field(10.0, gt=0)
    alerts_interval_s: float = Field(30.0, gt=0)
    webhooks_interval_s: float = Field(10.0, gt=0)
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

