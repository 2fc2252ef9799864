"""Shared pieces of the configuration models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict"]


class Strict(BaseModel):
    """A frozen model that refuses unknown keys (a typo in the file is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
