"""``tunewatch score`` and ``tunewatch eval``: LLM-as-judge scoring, online and offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from service.cli._app import app, fail
from service.cli._logging import configure_logging
from service.cli.serve import experiments_from, settings_from_env

__all__ = ["evaluate", "score"]

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="The experiments file with each experiment's `quality` section "
    "(judge, evaluators, thresholds). [env: TUNEWATCH_EXPERIMENTS_FILE]", show_default=False)]


@app.command(epilog="Examples: tunewatch score --once --config experiments.yaml;  "
             "tunewatch score --config experiments.yaml --every 10")
def score(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Run one pass and exit.")] = False,
    every: Annotated[float, typer.Option("--every", help="Seconds between passes when not --once.", min=0.5)] = 10.0,
) -> None:
    """Score the sampled responses waiting in the database with the configured judges.

    The service does this on its own schedule; run it here to catch up a backlog, or as extra
    scorer processes: several scorers share the work (each sample is claimed once, with SKIP
    LOCKED on PostgreSQL). Prints what each pass did.
    """
    from service.quality.scorer import Scorer  # lazy: the judge library is slow to import
    from service.store.db import Database

    settings = settings_from_env()
    configure_logging(settings.log_level)
    experiments = experiments_from(config or settings.experiments_file)
    quality = {e.name: e.quality for e in experiments.experiments if e.quality is not None}
    if not quality:
        raise fail("no experiment has a `quality` section: nothing to score")
    scorer = Scorer(Database(settings.database_url), quality)
    try:
        while True:
            result = scorer.run_once()
            typer.echo(f"claimed {result.claimed}, scored {result.scored}, retried later {result.retried}, "
                       f"failed {result.failed}, scores written {result.scores_written}")
            if once:
                return
            time.sleep(every)  # a standalone worker's pacing, not synchronisation
    except KeyboardInterrupt:
        return
    finally:
        scorer.close()


@app.command("eval", epilog="Example: tunewatch eval --config experiments.yaml --experiment demo "
             "--dataset eval.jsonl --format json --margin 0.1")
def evaluate(
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="The experiment whose arms to compare.")],
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="Fine-tuning JSONL (chat `messages`): "
                                          "every line's conversation minus its last assistant turn is asked.")],
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (for people) or json (for CI).")] = "table",
    margin: Annotated[float, typer.Option(
        "--margin", help="Exit 1 when the fine-tune's mean judge score is below the base's by more than this.")] = 0.0,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N conversations.", min=1)] = None,
) -> None:
    """Offline base-vs-fine-tuned evaluation: the study guide's comparison table.

    Sends each conversation of the dataset to both arms' upstreams, scores both with the same
    evaluators, and prints metric, base, fine-tuned and improvement with a 95% interval for
    relevance, coherence, fluency, tone, cost per request and p95 latency. Exits 1 when the
    fine-tune is worse than --margin, so a pipeline can gate a deployment on it. The run and every
    judgement behind it are stored in TUNEWATCH_DATABASE_URL (eval_runs, eval_scores).
    """
    from service.quality.offline import DatasetError, eval_command  # lazy: the judge library is slow
    from service.store import migrate
    from service.store.db import Database

    if fmt not in ("table", "json"):
        raise fail(f"--format must be table or json, not {fmt!r}")
    settings = settings_from_env()
    configure_logging("WARNING")
    experiments = experiments_from(config or settings.experiments_file)
    exp = experiments.experiment(experiment)
    if exp is None:
        raise fail(f"no experiment named {experiment!r} in the experiments file")
    if exp.quality is None:
        raise fail(f"experiment {experiment!r} has no `quality` section (judge, evaluators)")
    try:
        migrate.upgrade(settings.database_url)  # the run and its judgements are kept (eval_runs)
        database = Database(settings.database_url)
        code = eval_command(experiments, experiment, exp.quality, dataset, fmt=fmt, margin=margin, limit=limit,
                            database=database)
    except (DatasetError, ValueError) as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)
