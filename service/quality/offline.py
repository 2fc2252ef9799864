"""Offline evaluation (``tunewatch eval``): the same dataset through both arms, scored by the same judge.

:func:`run_eval` reads a fine-tuning JSONL dataset (one ``{"messages": [...]}`` per line; the prompt
is every message before the last assistant one, an optional top-level ``context`` is the grounding
for groundedness), sends each prompt to the experiment's control and treatment upstreams directly
with the official ``openai`` SDK (``OpenAI`` or ``AzureOpenAI``, keys from the upstreams'
``api_key_env``), scores every answer with the experiment's evaluators, and compares the arms with
``service.quality.compare`` (95 % intervals): the study guide's table of relevance, coherence,
fluency, tone compliance, cost per request and p95 latency, metric / base / fine-tuned /
improvement. ``EvalReport.worse`` says whether the fine-tune's mean on any judge score is below the
base's by more than ``margin`` points (the CI gate).

Blocking throughout (network, judge, files): a CLI command, never the event loop.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from openai import AzureOpenAI, OpenAI, OpenAIError
from rich.console import Console
from rich.progress import Progress, TaskID

from service.config import ExperimentsFile, UpstreamConfig, UpstreamKind, read_env
from service.quality.compare import COST, LATENCY_P95, ArmData, Comparison, compare_arms
from service.quality.evaluators import EvaluatorSuite, Judge, JudgeInput, Outcome
from service.quality.judge import EvaluatorName, QualityConfig
from service.quality.offline_table import render_table
from service.store.db import Database
from service.store.evals import save_eval

__all__ = [
    "DatasetError",
    "EvalReport",
    "EvalRow",
    "eval_command",
    "load_dataset",
    "render_table",
    "run_eval",
]

#: table order and labels, as in the study guide
METRIC_LABELS = {
    EvaluatorName.RELEVANCE.value: "Relevance",
    EvaluatorName.COHERENCE.value: "Coherence",
    EvaluatorName.FLUENCY.value: "Fluency",
    EvaluatorName.GROUNDEDNESS.value: "Groundedness",
    EvaluatorName.TONE.value: "Tone compliance",
    COST: "Cost per request (USD)",
    LATENCY_P95: "Latency (P95, s)",
}
_JUDGE_CHUNK = 8


class DatasetError(ValueError):
    """The dataset file is missing or not fine-tuning JSONL; the message names the line to fix."""


@dataclass(frozen=True, slots=True)
class EvalRow:
    """One conversation of the dataset: the prompt messages and what is judged."""

    messages: list[dict[str, Any]]
    query: str
    context: str | None = None


@dataclass(slots=True)
class _ArmRun:
    name: str
    responses: list[str | None] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    cost_usd: list[float] = field(default_factory=list)
    errors: int = 0
    scores: dict[str, list[float]] = field(default_factory=dict)
    #: (dataset row, evaluator, score) of every judgement, for storing the run
    judged: list[tuple[int, str, float]] = field(default_factory=list)
    judge_failures: int = 0


@dataclass(frozen=True, slots=True)
class EvalReport:
    """The comparison and the gate; ``to_dict()`` is the ``--format json`` output."""

    experiment: str
    dataset: str
    n: int
    control: str
    treatment: str
    comparison: Comparison
    errors: dict[str, int]
    judge_failures: dict[str, int]
    margin: float
    worse: bool
    reasons: list[str]
    #: arm -> evaluator -> scores, what the comparison was computed from (and what is stored)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: (arm, dataset row, evaluator, score) of every judgement
    judged: list[tuple[str, int, str, float]] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: f"eval-{uuid.uuid4().hex[:16]}")

    def rows(self) -> list[dict[str, Any]]:
        """The table: per metric the base and fine-tuned values with 95 % intervals, and the improvement."""
        out = []
        for metric, label in METRIC_LABELS.items():
            m = self.comparison.metrics.get(metric)
            if m is None:
                continue
            d = m.to_dict()
            out.append(
                {
                    "metric": metric,
                    "label": label,
                    "base": d["control_mean"],
                    "base_ci": d["control_ci"],
                    "fine_tuned": d["treatment_mean"],
                    "fine_tuned_ci": d["treatment_ci"],
                    "improvement_pct": d["improvement_pct"],
                    "improvement_ci": d["improvement_ci"],
                    "n_base": m.n_control,
                    "n_fine_tuned": m.n_treatment,
                    "significant": m.significant,
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "dataset": self.dataset,
            "n": self.n,
            "arms": {"base": self.control, "fine_tuned": self.treatment},
            "metrics": self.rows(),
            "errors": self.errors,
            "judge_failures": self.judge_failures,
            "gate": {"margin": self.margin, "worse": self.worse, "reasons": self.reasons},
            "run_id": self.run_id,
            "scores": {arm: {ev: {"mean": sum(v) / len(v), "n": len(v)} for ev, v in by_ev.items() if v}
                       for arm, by_ev in self.scores.items()},
            "comparison": self.comparison.to_dict(),
        }


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def load_dataset(path: Path, limit: int | None = None) -> list[EvalRow]:
    """Parse a fine-tuning JSONL file (blocking read). Raises ``DatasetError`` naming the bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the dataset: {exc.strerror}") from None
    rows: list[EvalRow] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise DatasetError(f"{path}:{number}: not a JSON object") from None
        messages = item.get("messages") if isinstance(item, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise DatasetError(f"{path}:{number}: needs `messages`, a list of {{role, content}} objects")
        last_assistant = max(
            (i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages)
        )
        prompt = messages[:last_assistant]
        users = [_text(m.get("content")) for m in prompt if m["role"] == "user"]
        if not users:
            raise DatasetError(f"{path}:{number}: no user message before the last assistant message")
        context = item.get("context")
        rows.append(
            EvalRow(prompt, users[-1], context if isinstance(context, str) and context.strip() else None)
        )
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise DatasetError(f"{path}: the dataset has no conversations")
    return rows


def _client(upstream: UpstreamConfig) -> OpenAI:
    key = read_env(upstream.api_key_env) if upstream.api_key_env else None
    secret = key.get_secret_value() if key is not None else "unused"
    timeout = upstream.timeouts.read_s
    if upstream.kind is UpstreamKind.AZURE:
        return AzureOpenAI(
            azure_endpoint=upstream.endpoint or "",
            api_key=secret,
            api_version=upstream.api_version,
            timeout=timeout,
            max_retries=2,
        )
    return OpenAI(base_url=upstream.base_url, api_key=secret, timeout=timeout, max_retries=2)


def _ask(client: OpenAI, upstream: UpstreamConfig, row: EvalRow) -> tuple[str | None, float, float]:
    """(answer, latency s, cost USD) of one prompt; answer None when the upstream failed."""
    started = time.perf_counter()
    try:
        completion = client.chat.completions.create(model=upstream.target_model, messages=row.messages)  # type: ignore[arg-type]
    except OpenAIError:
        return None, time.perf_counter() - started, 0.0
    latency = time.perf_counter() - started
    usage = completion.usage
    cost = 0.0
    if usage is not None:
        cost = (
            usage.prompt_tokens * upstream.price.input_per_1k
            + usage.completion_tokens * upstream.price.output_per_1k
        ) / 1000
    text = completion.choices[0].message.content if completion.choices else None
    return text, latency, cost


def _gate(comparison: Comparison, margin: float) -> list[str]:
    reasons = []
    for name in EvaluatorName:
        m = comparison.metrics.get(name.value)
        if m is not None and m.treatment_mean < m.control_mean - margin:
            reasons.append(
                f"{name.value}: fine-tuned {m.treatment_mean:.2f} < base {m.control_mean:.2f}"
                f" - margin {margin:g}"
            )
    return reasons


def run_eval(
    experiments: ExperimentsFile,
    experiment: str,
    quality: QualityConfig,
    dataset: Path,
    *,
    margin: float = 0.0,
    limit: int | None = None,
    concurrency: int = 8,
    judge: Judge | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    """Run the offline comparison (blocking: minutes for large datasets).

    ``progress(stage, done, total)`` is called as requests and judgements complete (stage
    ``"base"``/``"fine_tuned"``/``"judge"``). Raises ``DatasetError`` for a bad dataset and
    ``ValueError`` for an unknown experiment or when an arm answered nothing.
    """
    exp = experiments.experiment(experiment)
    if exp is None:
        raise ValueError(f"experiment {experiment!r} is not in the experiments file")
    rows = load_dataset(dataset, limit)
    arms = [exp.control_arm, exp.treatment_arm]
    runs = {arm: _ArmRun(arm) for arm in arms}
    for arm in arms:
        upstream = experiments.upstreams[next(a.upstream for a in exp.arms if a.name == arm)]
        client = _client(upstream)
        done = 0
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"eval-{arm}") as pool:
            for text, latency, cost in pool.map(lambda r: _ask(client, upstream, r), rows):  # noqa: B023  # consumed here
                run = runs[arm]
                run.responses.append(text)
                if text is None:
                    run.errors += 1
                else:
                    run.latency_s.append(latency)
                    run.cost_usd.append(cost)
                done += 1
                if progress:
                    progress(arm, done, len(rows))
        client.close()
        if runs[arm].errors == len(rows):
            raise ValueError(f"arm {arm!r}: every request to its upstream failed")
    owned = None
    if judge is None:
        judge = owned = EvaluatorSuite(quality, name="judge-eval")
    try:
        _judge_all(judge, rows, runs, progress)
    finally:
        if owned is not None:
            owned.close()
    control, treatment = (runs[a] for a in arms)
    comparison = compare_arms(
        ArmData(control.name, scores=control.scores, latency_s=control.latency_s, cost_usd=control.cost_usd),
        ArmData(
            treatment.name,
            scores=treatment.scores,
            latency_s=treatment.latency_s,
            cost_usd=treatment.cost_usd,
        ),
        planned_n=max(2, len(rows)),
        min_samples=min(30, len(rows)),
    )
    reasons = _gate(comparison, margin)
    return EvalReport(
        experiment=experiment,
        dataset=dataset.name,
        n=len(rows),
        control=control.name,
        treatment=treatment.name,
        comparison=comparison,
        errors={a: runs[a].errors for a in arms},
        judge_failures={a: runs[a].judge_failures for a in arms},
        margin=margin,
        worse=bool(reasons),
        reasons=reasons,
        scores={a: runs[a].scores for a in arms},
        judged=[(a, row, ev, score) for a in arms for row, ev, score in runs[a].judged],
    )


def _judge_all(
    judge: Judge,
    rows: Sequence[EvalRow],
    runs: dict[str, _ArmRun],
    progress: Callable[[str, int, int], None] | None,
) -> None:
    work = [
        (run, i, JudgeInput(row.query, text, row.context))
        for run in runs.values()
        for i, (row, text) in enumerate(zip(rows, run.responses, strict=True))
        if text is not None
    ]
    for start in range(0, len(work), _JUDGE_CHUNK):
        chunk = work[start : start + _JUDGE_CHUNK]
        for (run, i, _), outcomes in zip(chunk, judge.evaluate([item for _, _, item in chunk]), strict=True):
            for o in outcomes:
                if o.outcome is Outcome.OK and o.score is not None:
                    run.scores.setdefault(o.evaluator.value, []).append(o.score)
                    run.judged.append((i, o.evaluator.value, o.score))
                elif o.outcome is not Outcome.SKIPPED:
                    run.judge_failures += 1
        if progress:
            progress("judge", min(start + _JUDGE_CHUNK, len(work)), len(work))


def eval_command(
    experiments: ExperimentsFile,
    experiment: str,
    quality: QualityConfig,
    dataset: Path,
    *,
    fmt: str = "table",
    margin: float = 0.0,
    limit: int | None = None,
    out: TextIO | None = None,
    database: Database | None = None,
) -> int:
    """``tunewatch eval``: run, show a progress bar on stderr, print the table or JSON on stdout.

    Returns the exit code: 0 the fine-tune is not worse than ``margin``, 1 it is (the CI gate).
    Raises ``DatasetError``/``ValueError`` for bad input (the CLI maps them to exit code 2).
    """
    stdout = out or sys.stdout
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def step(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{stage:>10}", total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = run_eval(
            experiments, experiment, quality, dataset, margin=margin, limit=limit, progress=step
        )
    document = json.dumps(report.to_dict(), indent=2)
    if database is not None:  # kept: the run's report and the judgements behind it
        save_eval(database, report.run_id, report.experiment, report.dataset, report.n, document, report.judged)
    if fmt == "json":
        stdout.write(document + "\n")
    else:
        Console(file=stdout, width=120).print(render_table(report))
        for reason in report.reasons:
            Console(file=stdout).print(f"worse: {reason}")
    return 1 if report.worse else 0
