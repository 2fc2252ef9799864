"""Every command's help reads; bad usage and bad config exit 2 with one line that says what to fix."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli._app import COMMAND_MODULES, app

runner = CliRunner()
for _module in COMMAND_MODULES:  # what main() does before running the app
    importlib.import_module(_module)


def commands() -> list[str]:
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands if c.callback)  # type: ignore[union-attr]


def test_top_level_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("serve", "demo", "simulate"):
        assert name in result.output


@pytest.mark.parametrize("command", commands())
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output) > 200


def test_unknown_option_is_a_usage_error() -> None:
    assert runner.invoke(app, ["serve", "--no-such-option"]).exit_code == 2


def test_serve_without_a_config_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNEWATCH_EXPERIMENTS_FILE", raising=False)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "--config" in result.output


def test_serve_with_a_bad_file_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "exp.yaml"
    bad.write_text("upstreams:\n  base: {kind: openai, base_url: 'http://x/v1', model: m, api_key: sk-123}\n"
                   "experiments: [{name: demo, arms: [{name: base, upstream: base}]}]\n")
    monkeypatch.setenv("TUNEWATCH_API_KEYS", "sk-a")
    result = runner.invoke(app, ["serve", "--config", str(bad)])
    assert result.exit_code == 2
    assert "upstreams.base.api_key" in result.output and "api_key_env" in result.output
    assert "sk-123" not in result.output


def test_serve_with_a_bad_setting_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEWATCH_PORT", "not-a-port")
    result = runner.invoke(app, ["serve", "--config", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
    assert "TUNEWATCH_PORT" in result.output


def test_simulate_rejects_an_unknown_profile() -> None:
    result = runner.invoke(app, ["simulate", "--profile", "gpt-9"])
    assert result.exit_code == 2 and "gpt-9" in result.output
