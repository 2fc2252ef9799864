"""``tunewatch lint-dataset``, ``import-reference`` and ``ood-score``: the fine-tuning data and OOD."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from service.cli._app import app, fail
from service.cli.serve import settings_from_env
from service.errors import ConfigError, InvalidRequestError

__all__ = ["import_reference", "lint_dataset", "ood_score"]

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table (for people) or json (for scripts).")]
PercentileOpt = Annotated[float, typer.Option(
    "--percentile", help="In-domain percentile the threshold sits at: that share of in-domain queries "
    "is accepted, the rest flagged.", min=50, max=99.9)]


@app.command("lint-dataset", epilog="Examples: tunewatch lint-dataset train.jsonl;  "
             "tunewatch lint-dataset train.jsonl --validation valid.jsonl --format json")
def lint_dataset(
    file: Annotated[Path, typer.Argument(help="The fine-tuning JSONL (one {\"messages\": [...]} per line).")],
    validation: Annotated[Path | None, typer.Option(
        "--validation", help="The validation split, to check its size (~20% of the data).")] = None,
    fmt: FormatOpt = "table",
) -> None:
    """Check a fine-tuning file against the study guide's data rules, with line numbers.

    Valid JSON with `messages` of known roles and non-empty content, an assistant turn to learn
    from, one system prompt throughout, at least 10 examples (50-100 to be useful), exact and near
    duplicates, balanced categories, a ~20% validation split, token lengths. Exits 1 on errors.
    """
    from service.drift.lint import lint_dataset as lint  # lazy: keeps `tunewatch --help` fast
    from service.drift.lint_render import render, to_json

    if fmt not in ("table", "json"):
        raise fail(f"--format must be table or json, not {fmt!r}")
    report = lint(file, validation)
    if fmt == "json":
        typer.echo(to_json(report))
    else:
        Console().print(render(report))
    raise typer.Exit(report.exit_code)


@app.command("import-reference", epilog="Example: tunewatch import-reference --experiment demo train.jsonl")
def import_reference(
    file: Annotated[Path, typer.Argument(help="Fine-tuning JSONL (its user turns), a TSV with a header "
                                         "(the question/query/text column), or plain text lines.")],
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="The experiment the reference is for.")],
    percentile: PercentileOpt = 95.0,
    fmt: FormatOpt = "table",
) -> None:
    """Build an experiment's out-of-domain reference from its fine-tuning data.

    Reads the queries, calibrates the out-of-domain threshold on a held-out 20% at the chosen
    in-domain percentile, stores both in TUNEWATCH_DATABASE_URL and reports what it calibrated.
    The service then scores every request's last user message against it.
    """
    from service.drift.commands import import_reference as build  # lazy
    from service.drift.commands import render_import
    from service.drift.references import store_reference
    from service.store import migrate
    from service.store.db import Database

    settings = settings_from_env()
    try:
        imported = build(file, percentile=percentile)
        migrate.upgrade(settings.database_url)
        store_reference(Database(settings.database_url), experiment, imported)
    except (InvalidRequestError, ConfigError) as exc:
        raise fail(str(exc.args[0] if exc.args else exc)) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    if fmt == "json":
        typer.echo(orjson.dumps({"experiment": experiment, **imported.summary()}, default=str).decode())
    else:
        Console().print(render_import(imported))


@app.command("ood-score", epilog="Example: tunewatch ood-score --reference train.jsonl --input queries.txt "
             "| jq 'select(.out_of_domain)'")
def ood_score(
    reference: Annotated[Path, typer.Option("--reference", "-r", help="The reference: fine-tuning JSONL, "
                                            "a TSV with a header, or plain text lines.")],
    input_file: Annotated[str, typer.Option("--input", "-i", help="Queries, one per line; - for stdin.")] = "-",
    percentile: PercentileOpt = 95.0,
) -> None:
    """Score queries against a reference by hand: how far each is from what the model was tuned on.

    Prints one JSON object per line: {"text", "score", "out_of_domain"}; a higher score is further
    from the reference. The threshold is calibrated on the reference as import-reference does.
    """
    from service.drift.commands import ood_score_lines, read_queries  # lazy

    try:
        for row in ood_score_lines(reference, read_queries(input_file, sys.stdin), percentile=percentile):
            typer.echo(orjson.dumps(row).decode())
    except InvalidRequestError as exc:
        raise fail(exc.message) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
