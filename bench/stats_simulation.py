"""Simulations behind the statistics of issue 7: do the intervals survive peeking, is the power
what the report promises, do the detectors fire when they must and stay quiet when they must not.

    .venv/bin/python bench/stats_simulation.py            # full run, about 1-2 minutes on one core
    .venv/bin/python bench/stats_simulation.py --quick    # a tenth of the runs
    .venv/bin/python bench/stats_simulation.py --json bench-results/stats.json

Every simulation has a fixed seed, so the numbers are reproducible. Judge scores are discrete
1-5 draws (a judge's output), latencies lognormal.
"""

from __future__ import annotations

import argparse
import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from scipy import stats

from service.drift.detectors import (
    Detector,
    latency_change_point,
    latency_p95_above_control,
    quality_below_threshold,
    sample_ratio_mismatch,
    share_rising,
)
from service.quality.compare import (
    ArmData,
    compare_arms,
    fixed_horizon_sample_size,
    quantile_confidence_sequence,
    required_sample_size,
)

VALUES = np.arange(1.0, 6.0)
BASE = np.array([0.05, 0.10, 0.25, 0.35, 0.25])  # mean 3.65, sd 1.11
PLUS_03 = np.array([0.03, 0.07, 0.18, 0.36, 0.36])  # mean 3.95: +0.30 points
EVALUATORS = ("relevance", "coherence", "fluency", "groundedness", "tone")
LOOKS, STEP = 20, 30  # a look every "few minutes": 20 looks, 30 more scores per arm each time

console = Console()


def _sd(p: np.ndarray) -> float:
    return float(math.sqrt(p @ VALUES**2 - (p @ VALUES) ** 2))


def _loop(progress: Progress, label: str, runs: int, body: Callable[[np.random.Generator], Any]) -> list[Any]:
    task = progress.add_task(label, total=runs)
    rng = np.random.default_rng(zlib.crc32(label.encode()))  # a fixed seed per simulation
    out = []
    for _ in range(runs):
        out.append(body(rng))
        progress.advance(task)
    return out


def aa_peeking(progress: Progress, runs: int) -> dict[str, float]:
    """A/A, 5 judge metrics, 20 looks: anytime-valid vs a naive fixed-n z-test at every look."""
    z_naive, z_bonf = stats.norm.ppf(0.975), stats.norm.ppf(1 - 0.05 / len(EVALUATORS) / 2)

    def one(rng: np.random.Generator) -> tuple[bool, bool, bool]:
        n_max = LOOKS * STEP
        a = {e: rng.choice(VALUES, n_max, p=BASE) for e in EVALUATORS}
        b = {e: rng.choice(VALUES, n_max, p=BASE) for e in EVALUATORS}
        cs = naive = bonf = False
        for look in range(1, LOOKS + 1):
            n = look * STEP
            if not cs:
                cmp = compare_arms(
                    ArmData("a", {e: v[:n] for e, v in a.items()}),
                    ArmData("b", {e: v[:n] for e, v in b.items()}),
                )
                cs = any(m.significant for m in cmp.metrics.values())
            for e in EVALUATORS:
                x, y = a[e][:n], b[e][:n]
                z = abs(y.mean() - x.mean()) / math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / n)
                naive, bonf = naive or z > z_naive, bonf or z > z_bonf
        return cs, naive, bonf

    res = np.array(_loop(progress, "A/A with 20 looks", runs, one))
    return {
        "runs": runs,
        "anytime_valid_fpr": float(res[:, 0].mean()),
        "naive_95pct_fpr": float(res[:, 1].mean()),
        "naive_bonferroni_fpr": float(res[:, 2].mean()),
    }


def power_at_required_n(progress: Progress, runs: int) -> dict[str, float]:
    """+0.30 on relevance, 5 metrics: detection at the n that required_sample_size gives."""
    k = len(EVALUATORS)
    sd = max(_sd(BASE), _sd(PLUS_03))
    n = required_sample_size(0.3, sd, 0.05, 0.8, k)

    def one(rng: np.random.Generator) -> tuple[bool, bool]:
        a = {e: rng.choice(VALUES, n, p=BASE) for e in EVALUATORS}
        b = {e: rng.choice(VALUES, n, p=BASE) for e in EVALUATORS}
        b["relevance"] = rng.choice(VALUES, n, p=PLUS_03)
        at_n = compare_arms(ArmData("a", a), ArmData("b", b)).metrics["relevance"].better is True
        any_look = at_n
        for look in range(1, LOOKS):
            if any_look:
                break
            m = look * n // LOOKS
            cmp = compare_arms(
                ArmData("a", {e: v[:m] for e, v in a.items()}), ArmData("b", {e: v[:m] for e, v in b.items()})
            )
            any_look = cmp.metrics["relevance"].better is True
        return at_n, any_look

    res = np.array(_loop(progress, "A/B +0.3 at required n", runs, one))
    return {
        "runs": runs,
        "n_per_arm": n,
        "fixed_horizon_n": fixed_horizon_sample_size(0.3, sd, 0.05, 0.8, k),
        "power_at_n": float(res[:, 0].mean()),
        "power_any_of_20_looks": float(res[:, 1].mean()),
    }


def p95_coverage(progress: Progress, runs: int) -> dict[str, float]:
    """The p95 sequence at 95 %: share of runs whose interval ever misses the truth (20 looks)."""
    truth = math.exp(stats.norm.ppf(0.95) * 0.5)

    def one(rng: np.random.Generator) -> bool:
        x = rng.lognormal(0.0, 0.5, 4000)
        for n in range(200, 4001, 200):
            _, (low, high) = quantile_confidence_sequence(x[:n], alpha=0.05)
            if not low <= truth <= high:
                return True
        return False

    return {"runs": runs, "ever_miss_rate": float(np.mean(_loop(progress, "p95 coverage", runs, one)))}


def srm(progress: Progress, runs: int) -> dict[str, float]:
    weights = {"base": 0.5, "fine_tuned": 0.5}
    out: dict[str, float] = {"runs": runs}
    for n in (1000, 2000, 3000, 5000):
        for share, key in ((0.55, f"detect_55_45_n{n}"), (0.5, f"false_alarm_50_50_n{n}")):

            def one(rng: np.random.Generator, n: int = n, share: float = share) -> bool:
                x = int(rng.binomial(n, share))
                return sample_ratio_mismatch({"base": x, "fine_tuned": n - x}, weights).active

            out[key] = float(np.mean(_loop(progress, f"SRM {key}", runs, one)))
    return out


def change_point(progress: Progress, runs: int) -> dict[str, float]:
    def stationary(rng: np.random.Generator) -> bool:
        return latency_change_point(rng.lognormal(0, 0.5, 300), rng.lognormal(0, 0.5, 2000)).active

    out: dict[str, float] = {"runs": runs}
    out["false_alarm_rate_2000_points"] = float(
        np.mean(_loop(progress, "CUSUM stationary", runs, stationary))
    )
    for factor in (1.3, 1.6):

        def shifted(rng: np.random.Generator, factor: float = factor) -> float:
            recent = np.concatenate([rng.lognormal(0, 0.5, 500), factor * rng.lognormal(0, 0.5, 1500)])
            r = latency_change_point(rng.lognormal(0, 0.5, 300), recent)
            return float(r.evidence["alarm_index"] - 500) if r.active else math.nan

        delays = np.array(_loop(progress, f"CUSUM x{factor}", runs, shifted))
        out[f"detect_x{factor}"] = float(np.mean(np.isfinite(delays) & (delays >= 0)))
        out[f"median_delay_x{factor}"] = float(np.nanmedian(np.where(delays >= 0, delays, np.nan)))
    return out


def detectors(progress: Progress, runs: int) -> dict[str, float]:
    out: dict[str, float] = {"runs": runs}
    for factor in (1.0, 1.2, 1.3):

        def p95(rng: np.random.Generator, factor: float = factor) -> bool:
            c, t = rng.lognormal(0, 0.5, 1000), factor * rng.lognormal(0, 0.5, 1000)
            return latency_p95_above_control(c, t, seed=int(rng.integers(2**31))).active

        out[f"p95_fires_x{factor}_n1000"] = float(np.mean(_loop(progress, f"p95 x{factor}", runs, p95)))
    for rate in (0.08, 0.11):

        def ood(rng: np.random.Generator, rate: float = rate) -> bool:
            cur, base = int(rng.binomial(800, rate)), int(rng.binomial(4000, 0.08))
            return share_rising(Detector.OOD_SHARE_RISING, cur, 800, base, 4000).active

        out[f"share_fires_8pct_to_{round(rate * 100)}pct"] = float(
            np.mean(_loop(progress, f"share {rate}", runs, ood))
        )
    for p, label in ((BASE, "at_threshold"), (np.array([0.08, 0.14, 0.30, 0.30, 0.18]), "0.3_below")):

        def quality(rng: np.random.Generator, p: np.ndarray = p) -> bool:
            return quality_below_threshold(rng.choice(VALUES, 100, p=p), threshold=3.65).active

        out[f"quality_fires_{label}_n100"] = float(
            np.mean(_loop(progress, f"quality {label}", runs, quality))
        )
    return out


def required_n_table() -> list[dict[str, float]]:
    rows = []
    for effect in (0.2, 0.3, 0.5):
        for k in (1, 5, 9):
            anytime = required_sample_size(effect, 1.1, 0.05, 0.8, k)
            fixed = fixed_horizon_sample_size(effect, 1.1, 0.05, 0.8, k)
            rows.append(
                {
                    "effect": effect,
                    "k": k,
                    "anytime_n": anytime,
                    "fixed_n": fixed,
                    "inflation": anytime / fixed,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tenth of the runs")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    results: dict[str, Any] = {}
    with Progress(console=console, transient=True) as progress:
        results["aa_peeking"] = aa_peeking(progress, int(2000 * scale))
        results["power"] = power_at_required_n(progress, int(2000 * scale))
        results["p95_coverage"] = p95_coverage(progress, int(1000 * scale))
        results["srm"] = srm(progress, int(5000 * scale))
        results["change_point"] = change_point(progress, int(1000 * scale))
        results["detectors"] = detectors(progress, int(500 * scale))
    results["required_n"] = required_n_table()
    for section, values in results.items():
        table = Table(title=section)
        if isinstance(values, list):
            for col in values[0]:
                table.add_column(col)
            for row in values:
                table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()))
        else:
            table.add_column("measure")
            table.add_column("value")
            for key, value in values.items():
                table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
