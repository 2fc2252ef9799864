"""The offline evaluation as the study guide's table: metric, base, fine-tuned, improvement."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from service.quality.compare import COST

if TYPE_CHECKING:
    from service.quality.offline import EvalReport

__all__ = ["render_table"]


def _fmt(value: Any, ci: Any, digits: int) -> str:
    if value is None:
        return "n/a"
    low, high = ci if isinstance(ci, list | tuple) else (None, None)
    bounds = ", ".join("∞" if b is None else f"{b:.{digits}f}" for b in (low, high))
    return f"{value:.{digits}f} [{bounds}]"


def render_table(report: EvalReport) -> Table:
    """The comparison as a rich table: metric, base, fine-tuned, improvement (95 % intervals)."""
    table = Table(
        title=f"{report.experiment}: base vs fine-tuned on {report.dataset} (n={report.n}, 95% intervals)"
    )
    for column in ("Metric", f"Base ({report.control})", f"Fine-tuned ({report.treatment})", "Improvement"):
        table.add_column(column)
    for row in report.rows():
        digits = 4 if row["metric"] == COST else 2
        improvement = _fmt(row["improvement_pct"], row["improvement_ci"], 0).replace(" [", "% [", 1)
        if row["improvement_pct"] is not None and row["improvement_pct"] > 0:
            improvement = "+" + improvement
        table.add_row(
            row["label"],
            _fmt(row["base"], row["base_ci"], digits),
            _fmt(row["fine_tuned"], row["fine_tuned_ci"], digits),
            improvement,
        )
    return table
