"""The public surface the demo, the CLI and the tests rely on."""

from __future__ import annotations

import pytest

import service.simulator as simulator
from service.simulator import SimConfig, build_app, start_in_thread


def test_public_api() -> None:
    names = {"SimConfig", "build_app", "serve", "start_in_thread", "demo_queries", "RunningSimulator"}
    assert names <= set(simulator.__all__)
    assert all(hasattr(simulator, name) for name in simulator.__all__)


def test_unknown_profile_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="unknown simulator profile"):
        build_app("gpt-5", SimConfig())
    with pytest.raises(ValueError, match="unknown simulator profile"):
        start_in_thread("gpt-5", SimConfig())
