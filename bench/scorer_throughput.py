"""Scorer throughput against the simulated judge, and azure-ai-evaluation's own CPU cost per evaluation.

The judge runs in a separate process (``service.simulator.serve``) so that this process's CPU time
is the scorer's alone: the library (prompt rendering, a new OpenAI client per call, parsing), our
plumbing, and, in the end-to-end stage, SQLite. Three stages:

1. ``evaluate``: :class:`EvaluatorSuite.evaluate` on batches of samples, every evaluator, with the
   judge answering at once (``time_scale`` 0): the CPU-bound ceiling; CPU ms per evaluation.
2. ``latency``: the same with the judge's realistic latency (``time_scale`` 1, ~0.3 s + decode):
   what ``concurrency`` buys.
3. ``scorer``: :meth:`Scorer.run_once` over samples stored in SQLite, claiming, judging, storing.

The target: a 10 % sample of 50 requests/s is 5 samples/s, i.e. 5 x N evaluations/s.

    .venv/bin/python bench/scorer_throughput.py [--samples 200] [--concurrency 8] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.quality.evaluators import EvaluatorSuite, JudgeInput, Outcome  # noqa: E402
from service.quality.judge import JudgeConfig, QualityConfig  # noqa: E402
from service.quality.scorer import Scorer  # noqa: E402
from service.simulator.profiles import answer  # noqa: E402
from service.simulator.queries import demo_queries  # noqa: E402


@contextmanager
def judge_process(time_scale: float) -> Iterator[str]:
    """A simulated judge in its own process; yields its base URL."""
    code = (
        "import sys; from service.simulator import SimConfig, serve;"
        f"serve('127.0.0.1', 0, 'judge', SimConfig(seed=1, time_scale={time_scale}))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise SystemExit(f"the judge did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def samples(n: int) -> list[tuple[str, JudgeInput]]:
    """(arm, input) pairs: demo queries answered by the simulated arms, alternating."""
    queries = demo_queries()
    out = []
    for i in range(n):
        q, _ = queries[i % len(queries)]
        arm = "fine_tuned" if i % 2 else "base"
        out.append((arm, JudgeInput(q, answer(arm, {"messages": [{"role": "user", "content": q}]}, 0).text)))
    return out


def quality(url: str, concurrency: int) -> QualityConfig:
    return QualityConfig(
        judge=JudgeConfig(base_url=url + "/v1", model="judge-sim"),
        concurrency=concurrency,
        timeout_s=30,
        evaluators=["relevance", "coherence", "fluency", "tone"],
        batch_size=50,
        lease_s=3600,
    )


def bench_evaluate(url: str, n: int, concurrency: int) -> dict[str, Any]:
    suite = EvaluatorSuite(quality(url, concurrency))
    suite.start()
    items = [item for _, item in samples(n)]
    suite.evaluate(items[:4])  # warm up: connections, first-call costs
    cpu0, t0 = time.process_time(), time.perf_counter()
    results = []
    for start in range(0, n, 50):
        results += suite.evaluate(items[start : start + 50])
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    suite.close()
    evaluations = sum(len(r) for r in results)
    ok = sum(1 for r in results for o in r if o.outcome is Outcome.OK)
    evaluators = len(results[0])
    return {
        "samples": n,
        "evaluations": evaluations,
        "ok": ok,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "evaluations_per_s": round(evaluations / wall, 1),
        "samples_per_min_per_evaluator": round(n / wall * 60, 0),
        "samples_per_s_all_evaluators": round(n / wall, 2),
        "cpu_ms_per_evaluation": round(cpu / evaluations * 1000, 1),
        "evaluators": evaluators,
    }


def bench_scorer(url: str, n: int, concurrency: int) -> dict[str, Any]:
    from service.store.db import Database
    from service.store.migrate import upgrade
    from service.store.sink import RequestSink
    from service.telemetry.recorder import Record

    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        upgrade(db_url)
        db = Database(db_url)
        now = datetime.now(UTC).timestamp() - 60
        records = [
            Record(
                request_id=f"b{i:08d}",
                started_at=now,
                experiment="demo",
                arm=arm,
                upstream="u",
                stream=False,
                status=200,
                outcome="ok",
                error_kind=None,
                latency_s=0.5,
                ttft_s=None,
                upstream_latency_s=0.5,
                overhead_s=0.001,
                prompt_tokens=20,
                completion_tokens=80,
                cost_usd=0.0001,
                unit_id=None,
                sampled=True,
                query=item.query,
                messages=[{"role": "user", "content": item.query}],
                response_text=item.response,
            )
            for i, (arm, item) in enumerate(samples(n))
        ]
        RequestSink(db, b"bench-key-0123456789").write(records)
        suite = EvaluatorSuite(quality(url, concurrency))
        suite.start()
        scorer = Scorer(db, {"demo": quality(url, concurrency)}, judges={"demo": suite}, run_budget_s=600)
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = scorer.run_once()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        suite.close()
        db.dispose()
    return {
        "samples": n,
        "scored": result.scored,
        "scores_written": result.scores_written,
        "wall_s": round(wall, 2),
        "samples_per_s": round(result.scored / wall, 2),
        "cpu_ms_per_sample": round(cpu / max(1, result.scored) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with judge_process(0.0) as url:
        report["evaluate_instant_judge"] = bench_evaluate(url, args.samples, args.concurrency)
        report["scorer_sqlite_instant_judge"] = bench_scorer(url, args.samples, args.concurrency)
    with judge_process(1.0) as url:
        report["evaluate_realistic_judge"] = bench_evaluate(url, max(40, args.samples // 4), args.concurrency)
        report["evaluate_realistic_judge_c32"] = bench_evaluate(url, max(40, args.samples // 4), 32)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
