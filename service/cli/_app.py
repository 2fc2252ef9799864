"""The typer application every command module registers on."""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "fail", "main"]

app = typer.Typer(
    name="tunewatch",
    help="Monitor a fine-tuned LLM against its base model: an OpenAI-compatible A/B proxy, "
    "LLM-as-judge scoring, drift detection, reports and alerts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode="markdown",
)

#: command modules, imported for their side effect of registering on ``app``
COMMAND_MODULES = (
    "service.cli.serve", "service.cli.data", "service.cli.quality", "service.cli.report", "service.cli.drift",
)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise (2: usage/config, 1: it failed)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def main() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name)
    app()
