"""The report in the terminal (rich): the study guide's base-vs-fine-tune table, then the verdict,
its reasons, the arms and the cost and payback. Pure rendering onto a ``rich`` console."""

from __future__ import annotations

import math

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from service.quality.compare import COST, LATENCY_P95, TTFT_P95
from service.quality.report import Report
from service.quality.report_html import fmt_metric, metric_label

__all__ = ["render_table"]

_STYLE = {True: "green", False: "red", None: "dim"}


def _pct_interval(lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "unbounded so far"
    return f"[{lo:+.1f}%, {hi:+.1f}%]"


def _comparison(report: Report) -> Table:
    table = Table(title=f"{report.experiment}: {report.control} vs {report.treatment} (stage {report.stage})")
    for header, justify in (("Metric", "left"), (report.control, "right"), (report.treatment, "right"),
                            ("Improvement", "right"), ("Interval", "right"), ("n", "right")):  # fmt: skip
        table.add_column(header, justify=justify)  # type: ignore[arg-type]  # literal from the tuple above
    for name, m in report.comparison.metrics.items():
        pct = f"{m.improvement_pct:+.1f}%" if math.isfinite(m.improvement_pct) else "n/a"
        table.add_row(
            metric_label(name),
            fmt_metric(name, m.control_mean),
            fmt_metric(name, m.treatment_mean),
            Text(pct, style=_STYLE[m.better]),
            _pct_interval(*m.improvement_ci),
            f"{m.n_control} / {m.n_treatment}",
        )
    for name in report.comparison.insufficient:
        table.add_row(metric_label(name), "n/a", "n/a", Text("not enough data", style="dim"), "", "")
    return table


def _arms(report: Report) -> Table:
    table = Table(title="Arms")
    for header in ("Arm", "Weight", "Requests", "Errors", "Scored", "Feedback", "Out-of-domain",
                   "p95 latency", "p95 TTFT", "Cost/request"):  # fmt: skip
        table.add_column(header, justify="left" if header == "Arm" else "right")
    for arm, a in report.arms.items():
        ood = a["out_of_domain_rate"]
        table.add_row(
            arm,
            "n/a" if a["weight"] is None else f"{100 * a['weight']:.1f}%",
            str(a["requests"]),
            str(a["errors"]),
            str(a["scored"]),
            str(a["feedback"]),
            "n/a" if ood is None else f"{100 * ood:.1f}%",
            fmt_metric(LATENCY_P95, a["latency_p95_s"]),
            fmt_metric(TTFT_P95, a["ttft_p95_s"]),
            fmt_metric(COST, a["cost_per_request_usd"]),
        )
    return table


def _cost(report: Report) -> str:
    c = report.cost
    if c is None:
        return "Cost: not enough data (both arms need requests with a known cost)."
    line = (
        f"Cost: {c.treatment} {fmt_metric(COST, c.treatment_cost_per_request_usd)} vs {c.control} "
        f"{fmt_metric(COST, c.control_cost_per_request_usd)} per request ({c.change_pct:+.1f}%); at "
        f"{c.requests_per_day:,.0f} requests a day: ${c.treatment_monthly_cost_usd:,.2f} vs "
        f"${c.control_monthly_cost_usd:,.2f} a month."
    )
    if c.job_cost_usd is None:
        return line + " Payback: pass --job-cost to compute it."
    if c.payback_days is None:
        return line + f" The ${c.job_cost_usd:,.2f} job never pays back at this volume."
    return line + f" The ${c.job_cost_usd:,.2f} job pays back in {c.payback_days:.1f} days."


def render_table(report: Report, console: Console) -> None:
    """Print the comparison table, the verdict with its reasons, the arms and the cost line."""
    v = report.verdict
    style = {
        "deploy": "bold green",
        "reduce_epochs": "bold red",
        "overfitting": "bold red",
        "void": "bold magenta",
    }
    reasons = Text("\n".join(f"- {r}" for r in v.reasons))
    console.print(_comparison(report))
    head = Text(f"Verdict: {str(v.action).replace('_', ' ').upper()}", style=style.get(str(v.action), "bold"))
    console.print(Panel(Group(head, reasons), expand=True))
    console.print(_arms(report))
    console.print(_cost(report))
    if report.srm is not None and report.srm.active:
        console.print(Text("Sample-ratio mismatch: the comparison is void.", style="bold magenta"))
