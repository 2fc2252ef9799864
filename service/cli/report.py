"""``tunewatch report``: the base-vs-fine-tune comparison, the verdict, cost and payback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli._app import app, fail
from service.cli.serve import DebugOpt, experiments_from, settings_from_env
from service.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from service.quality.report import Report

__all__ = ["parse_since", "report"]

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_UNITS = {"m": 60.0, "h": 3600.0, "d": 86_400.0}


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    HTML = "html"


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """``6h``, ``30m``, ``7d`` (before ``now``) or an ISO-8601 time (UTC when it names no zone).

    Raises ValueError with what is accepted.
    """
    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {value!r}: use a duration (30m, 6h, 7d) or an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_EPILOG = """Examples:

    tunewatch report --experiment demo

    tunewatch report -e demo --format json --since 24h > report.json

    tunewatch report -e demo --config experiments.yaml --job-cost 300 --format html --out report.html
"""


@app.command(epilog=_EPILOG)
def report(
    experiment: Annotated[
        str, typer.Option("--experiment", "-e", help="The experiment (the `model` clients send).")
    ],
    output_format: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            help="table: rich table in the terminal; json: the report contract; html: one "
            "self-contained file with charts.",
            case_sensitive=False,
        ),
    ] = Format.TABLE,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write to FILE instead of standard output.", show_default=False),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The experiments file, for the stage, the control arm and the weights (the "
            "sample-ratio check). Without it: stage `unknown`, control `base`, weights = observed shares. "
            "[env: TUNEWATCH_EXPERIMENTS_FILE]",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only traffic since then: a duration (30m, 6h, 7d) or an ISO time, e.g. when the "
            "current stage started. Default: since the current stage started (stored by the admin API), "
            "else all recorded traffic.",
            show_default=False,
        ),
    ] = None,
    job_cost: Annotated[
        float | None,
        typer.Option(
            "--job-cost",
            help="The fine-tuning job's cost in USD, for the payback time.",
            min=0,
            show_default=False,
        ),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option("--stage", help="Show this stage instead of the configured one.", show_default=False),
    ] = None,
    all_data: Annotated[
        bool,
        typer.Option(
            "--all-data",
            help="Ignore the stored stage state: every recorded request, the stage and weights of --config.",
        ),
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Compare the arms of an experiment: per-arm numbers, the improvement of the fine-tune on every
    metric with anytime-valid intervals, the verdict (deploy, revisit data, reduce epochs,
    overfitting, keep collecting, void) with its reasons, cost and payback.

    Reads TUNEWATCH_DATABASE_URL (default sqlite:///./tunewatch.db). Exits 1 when the experiment is
    unknown and has no data, 2 on bad options or config.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from service.quality.report import build_report  # lazy: numpy/scipy are slow to import
    from service.store.db import Database

    settings = settings_from_env()
    path = config or settings.experiments_file
    experiments = experiments_from(path) if path is not None else None
    now = datetime.now(UTC)
    try:
        since_at = parse_since(since, now)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        db = Database(settings.database_url)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if db.is_sqlite and db.url.database not in (None, "", ":memory:") and not Path(db.url.database).exists():
        raise fail(f"no database at {db.url.database}: run the service or `tunewatch migrate` first", 1)
    try:
        built = build_report(
            db, experiments, experiment, stage_override=stage, now=now, since=since_at,
            job_cost_usd=job_cost, from_stage_start=not all_data,
        )  # fmt: skip
    except NotFoundError as exc:
        raise fail(str(exc), 1) from None
    except SQLAlchemyError as exc:
        if debug:
            raise
        reason = f"cannot read the database ({exc.__class__.__name__}); is it migrated? (`tunewatch migrate`)"
        raise fail(reason, 1) from None
    finally:
        db.dispose()
    _emit(built, output_format, out)


def _emit(built: Report, output_format: Format, out: Path | None) -> None:
    import orjson
    from rich.console import Console

    from service.quality.report_html import render_html
    from service.quality.report_table import render_table

    if output_format is Format.TABLE:
        if out is None:
            render_table(built, Console())
            return
        with out.open("w", encoding="utf-8") as fh:
            render_table(built, Console(file=fh, width=140, no_color=True))
        return
    if output_format is Format.JSON:
        text = orjson.dumps(built.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        text = render_html(built)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}", 1) from None
    typer.echo(f"wrote {out}", err=True)
