"""``tunewatch serve``, ``demo`` and ``simulate``: the commands that run servers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli._app import app, fail
from service.cli._logging import configure_logging
from service.config import ExperimentsFile, Settings, load_experiments
from service.errors import ConfigError

__all__ = ["demo", "serve", "simulate"]

HostOpt = Annotated[str | None, typer.Option(
    "--host", help="Interface to listen on. [env: TUNEWATCH_HOST; default 127.0.0.1]", show_default=False)]
PortOpt = Annotated[int | None, typer.Option(
    "--port", "-p", help="Port to listen on; 0 picks a free one and prints it. [env: TUNEWATCH_PORT; default 8000]",
    show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]


def settings_from_env(**overrides: Any) -> Settings:
    """``Settings`` from the environment plus the given non-None overrides; exit 2 on bad config."""
    try:
        return Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise fail(str(exc)) from None


def experiments_from(path: Path | None) -> ExperimentsFile:
    if path is None:
        raise fail("no experiments file: pass --config FILE or set TUNEWATCH_EXPERIMENTS_FILE "
                   "(see examples/experiments.yaml), or run `tunewatch demo`")
    try:
        return load_experiments(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@app.command(epilog="Example: TUNEWATCH_API_KEYS=sk-app-1 TUNEWATCH_ADMIN_KEY=... "
             "tunewatch serve --config experiments.yaml --port 8000")
def serve(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="The experiments file (YAML): upstreams, experiments, arms. "
        "[env: TUNEWATCH_EXPERIMENTS_FILE]", show_default=False)] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run the proxy in front of real upstreams.

    Serves the OpenAI and Azure OpenAI routes, /metrics, /healthz, /readyz and /admin on one port,
    records every request to TUNEWATCH_DATABASE_URL and runs the scheduled jobs. Prints the
    address it listens on first; stops cleanly on SIGTERM or Ctrl-C, flushing what it recorded.
    """
    from service.runner import run_service  # lazy: keeps `tunewatch --help` fast

    settings = settings_from_env(host=host, port=port)
    configure_logging(settings.log_level)
    experiments = experiments_from(config or settings.experiments_file)
    if not settings.api_keys:
        raise fail("TUNEWATCH_API_KEYS is empty: set the comma-separated client keys the proxy accepts")
    try:
        run_service(settings, experiments, announce=typer.echo)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@app.command(epilog="Examples: tunewatch demo;  tunewatch demo --traffic 0 --port 8080")
def demo(
    traffic: Annotated[float, typer.Option(
        "--traffic", help="Requests per second of the demo's own traffic (0: none, the proxy only serves you).",
        min=0, max=200)] = 3.0,
    host: HostOpt = None,
    port: PortOpt = None,
    time_scale: Annotated[float, typer.Option(
        "--time-scale", help="Multiply the simulated upstreams' latencies (1: realistic, 0.1: ten times faster).",
        min=0)] = 1.0,
    debug: DebugOpt = False,
) -> None:
    """Run everything on this machine: simulated base, fine-tuned and judge upstreams, the proxy
    (experiment "demo", arms base and fine_tuned), SQLite in ./tunewatch.db, the scheduler, and
    demo traffic through the official openai SDK so that metrics, dashboards and reports fill.

    Prints the URL, the client key and the admin key (TUNEWATCH_API_KEYS / TUNEWATCH_ADMIN_KEY
    replace them). Ctrl-C stops it cleanly.
    """
    from service.demo import run_demo  # lazy: keeps `tunewatch --help` fast

    settings = settings_from_env(host=host, port=port)
    configure_logging("WARNING" if settings.log_level.upper() == "INFO" else settings.log_level)
    run_demo(settings, traffic_rps=traffic, time_scale=time_scale, echo=typer.echo)


@app.command(epilog="Example: tunewatch simulate --port 0 --profile fine_tuned")
def simulate(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on; 0 picks a free one.")] = 9100,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    profile: Annotated[str, typer.Option(
        "--profile", help="base, fine_tuned (the insurance fine-tune) or judge (LLM-as-judge).")] = "base",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the latency and fault draws.")] = 0,
    time_scale: Annotated[float, typer.Option("--time-scale", help="Multiply every simulated latency.", min=0)] = 1.0,
) -> None:
    """Run one simulated OpenAI-compatible upstream (OpenAI and Azure routes, SSE streaming,
    embeddings, fault injection) for trying tunewatch without a real model.

    Prints its address first. Faults: put #sim:429, #sim:500, #sim:timeout, #sim:reset or
    #sim:midstream-reset in the last user message, or POST /_sim/config.
    """
    if profile not in ("base", "fine_tuned", "judge"):
        raise fail(f"unknown profile {profile!r}: use base, fine_tuned or judge")
    from service.simulator import SimConfig  # lazy: keeps `tunewatch --help` fast
    from service.simulator import serve as serve_simulator

    serve_simulator(host, port, profile, SimConfig(seed=seed, time_scale=time_scale))
