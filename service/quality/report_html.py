"""The report as ONE self-contained HTML file: inline CSS, inline SVG charts, no script, no network.

The file a person sends to whoever approves the cost: the verdict and its reasons, the comparison
table (base vs fine-tune with improvement and interval), the arms, in-domain vs out-of-domain
quality, cost and payback, the detector signals, and the charts (score distributions per
evaluator, latency distribution, out-of-domain rate and quality over time, cost and payback).

Pure string building from a :class:`~service.quality.report.Report` (numpy for the histograms).
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np

from service.quality.compare import COST, FEEDBACK, LATENCY_P95, TTFT_P95
from service.quality.cost import DAYS_PER_MONTH
from service.quality.report import Report
from service.quality.report_svg import arm_color, bar_chart, line_chart, step_chart

__all__ = ["fmt_metric", "metric_label", "render_html"]

_LABELS = {FEEDBACK: "User feedback (0-1)", LATENCY_P95: "p95 latency", TTFT_P95: "p95 time to first token",
           COST: "Cost per request"}  # fmt: skip
_ACTION_COLORS = {"deploy": "#2e7d32", "revisit_data": "#8d6e00", "reduce_epochs": "#c62828",
                  "overfitting": "#c62828", "keep_collecting": "#455a64", "void": "#6a1b9a"}  # fmt: skip

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;
background:#f4f6f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d5dae2;padding-bottom:4px}
.meta{color:#566070}
.card{background:#fff;border:1px solid #d5dae2;border-radius:8px;padding:14px 18px;margin:12px 0}
.verdict{border-left:8px solid var(--c)}
.verdict .action{font-size:22px;font-weight:700;color:var(--c);text-transform:uppercase}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:6px 10px;border-bottom:1px solid #e3e7ee;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#eef1f6;font-weight:600}
.good{color:#2e7d32;font-weight:600}
.bad{color:#c62828;font-weight:600}
.ns{color:#566070}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.charts svg{background:#fff;border:1px solid #d5dae2;border-radius:8px}
svg .ct{font-size:13px;font-weight:600;fill:#1d2330}
svg .yl{font-size:10px;text-anchor:end;fill:#566070}
svg .xl{font-size:10px;text-anchor:middle;fill:#566070}
svg .lg{font-size:11px;fill:#1d2330}
svg .grid{stroke:#e3e7ee}
svg .hl{stroke:#c62828;stroke-dasharray:6 4}
svg .hlt{font-size:10px;text-anchor:end;fill:#c62828}
.small{font-size:12px;color:#566070}
"""


def metric_label(metric: str) -> str:
    return _LABELS.get(metric, metric.replace("_", " ").capitalize())


def fmt_metric(metric: str, value: float | None) -> str:
    """A metric's value with its unit: seconds for p95s, dollars for cost, 2 decimals otherwise."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if metric in (LATENCY_P95, TTFT_P95):
        return f"{value:.2f} s"
    if metric == COST:
        return f"${value:.4f}"
    return f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+.1f}%"


def _interval(ci: Any) -> str:
    lo, hi = ci
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "unbounded so far"
    return f"[{lo:+.1f}%, {hi:+.1f}%]"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _table(headers: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _comparison(report: Report) -> str:
    rows = []
    for name, m in report.comparison.metrics.items():
        css = {True: "good", False: "bad", None: "ns"}[m.better]
        word = {True: "better", False: "worse", None: "not significant"}[m.better]
        rows.append([
            escape(metric_label(name)), fmt_metric(name, m.control_mean), fmt_metric(name, m.treatment_mean),
            f'<span class="{css}">{_pct(m.improvement_pct)}</span>', _interval(m.improvement_ci),
            f'<span class="{css}">{word}</span>', f"{m.n_control} / {m.n_treatment}",
        ])  # fmt: skip
    headers = ["Metric", report.control, report.treatment, "Improvement", "Interval", "Result", "n"]
    return _table(headers, rows, "comparison")


def _arms(report: Report) -> str:
    rows = []
    for arm, a in report.arms.items():
        rows.append([
            escape(arm), _rate(a["weight"]), str(a["requests"]), str(a["errors"]), str(a["samples"]),
            str(a["scored"]), str(a["feedback"]), _rate(a["out_of_domain_rate"]),
            _rate(a["low_confidence_rate"]),
            fmt_metric(LATENCY_P95, a["latency_p95_s"]), fmt_metric(TTFT_P95, a["ttft_p95_s"]),
            fmt_metric(COST, a["cost_per_request_usd"]),
        ])  # fmt: skip
    headers = ["Arm", "Weight", "Requests", "Errors", "Samples", "Scored", "Feedback", "Out-of-domain",
               "Low confidence", "p95 latency", "p95 TTFT", "Cost/request"]  # fmt: skip
    return _table(headers, rows, "arms")


def _domains(report: Report) -> str:
    d = report.to_dict()
    ind, ood = d["in_domain"]["arms"], d["out_of_domain"]["arms"]
    evaluators = sorted({ev for a in (*ind.values(), *ood.values()) for ev in a})
    rows = []
    for ev in evaluators:
        row = [escape(ev)]
        for arm in report.arms:
            for side in (ind, ood):
                s = side.get(arm, {}).get(ev)
                row.append("n/a" if not s or s["mean"] is None else f"{s['mean']:.2f} (n={s['n']})")
        rows.append(row)
    headers = ["Evaluator"] + [
        f"{arm} {side}" for arm in report.arms for side in ("in-domain", "out-of-domain")
    ]
    return _table(headers, rows, "domains")


def _score_charts(report: Report, colors: dict[str, str]) -> list[str]:
    charts = []
    evaluators = sorted({ev for o in report.observations.values() for ev in o.scores})
    for ev in evaluators:
        series = {}
        for arm, o in report.observations.items():
            s = np.rint(o.scores.get(ev, np.empty(0)))
            series[arm] = [float((s == k).mean()) if s.size else math.nan for k in range(1, 6)]
        charts.append(bar_chart(f"scores-{ev}", f"{ev}: judge score distribution", ["1", "2", "3", "4", "5"],
                                series, y_fmt=lambda v: f"{100 * v:.0f}%", colors=colors))  # fmt: skip
    return charts


def _latency_chart(report: Report, colors: dict[str, str]) -> str:
    lat = {arm: o.served_latency_s for arm, o in report.observations.items()}
    everything = np.concatenate([v for v in lat.values() if v.size] or [np.array([0.1, 10.0])])
    lo, hi = max(float(everything.min()), 1e-3), max(float(everything.max()), 1e-2)
    edges = np.geomspace(lo, hi * 1.0001, 25) if hi > lo else np.array([lo * 0.9, lo * 1.1])
    series = {arm: (np.histogram(v, edges)[0] / v.size).tolist() if v.size else [math.nan] * (edges.size - 1)
              for arm, v in lat.items()}  # fmt: skip
    markers = {arm: float(np.percentile(v, 95)) for arm, v in lat.items() if v.size}
    return step_chart("latency", "Latency distribution (log scale, dashed: p95)", edges.tolist(), series,
                      x_fmt=lambda v: f"{v:.2g}s", y_fmt=lambda v: f"{100 * v:.0f}%", colors=colors,
                      markers=markers)  # fmt: skip


def _time_charts(report: Report, colors: dict[str, str]) -> list[str]:
    tl = report.timeline
    fmt_x = "%H:%M" if tl["bucket_s"] < 86_400 else "%m-%d"
    labels = [np.datetime64(s[:19]).astype("datetime64[s]").item().strftime(fmt_x) for s in tl["starts"]]
    arms = tl["arms"]
    return [
        line_chart("ood-over-time", "Out-of-domain rate over time", labels,
                   {a: s["out_of_domain_rate"] for a, s in arms.items()}, y_fmt=lambda v: f"{100 * v:.0f}%",
                   colors=colors),
        line_chart("quality-over-time", "Mean judge score over time (all evaluators)", labels,
                   {a: s["quality_mean"] for a, s in arms.items()}, y_fmt=lambda v: f"{v:.1f}", colors=colors,
                   y_min=1.0, y_max=5.0),
    ]  # fmt: skip


def _cost_section(report: Report, colors: dict[str, str]) -> tuple[str, list[str]]:
    c = report.cost
    if c is None:
        return "<p>Not enough cost data: both arms need requests with a known cost.</p>", []
    monthly = {c.control: [c.control_monthly_cost_usd], c.treatment: [c.treatment_monthly_cost_usd]}
    title = f"Monthly cost at {c.requests_per_day:,.0f} requests a day"
    charts = [bar_chart("cost", title, ["all traffic on the arm"],
                        monthly, y_fmt=lambda v: f"${v:,.0f}", colors=colors)]  # fmt: skip
    text = (f"<p>{escape(c.treatment)} costs <b>{fmt_metric(COST, c.treatment_cost_per_request_usd)}</b> "
            "per request "
            f"against <b>{fmt_metric(COST, c.control_cost_per_request_usd)}</b> ({_pct(c.change_pct)}); "
            f"at the current volume that is <b>${c.monthly_savings_usd:,.2f}</b> a month saved "
            f"({DAYS_PER_MONTH}-day month).")  # fmt: skip
    if c.job_cost_usd is not None:
        if c.payback_days is not None:
            text += (
                f" The ${c.job_cost_usd:,.2f} fine-tuning job pays back in <b>{c.payback_days:.1f} days</b>."
            )
            days = max(30, math.ceil(c.payback_days * 1.5))
            xs = list(range(0, days + 1, max(1, days // 30)))
            charts.append(line_chart(
                "payback", "Cumulative savings vs the fine-tuning job's cost", [f"d{x}" for x in xs],
                {c.treatment: [c.daily_savings_usd * x for x in xs]}, y_fmt=lambda v: f"${v:,.0f}",
                colors=colors, hline=(c.job_cost_usd, f"job ${c.job_cost_usd:,.0f}"),
            ))  # fmt: skip
        else:
            text += f" The ${c.job_cost_usd:,.2f} fine-tuning job never pays back at this volume."
    else:
        text += " Set the fine-tuning job's cost to see the payback time."
    return text + "</p>", charts


def _signals(report: Report) -> str:
    if not report.signals:
        return "<p>No detector run recorded yet.</p>"
    active = '<span class="bad">ACTIVE</span>'
    rows = [[escape(s["detector"]), escape(str(s["arm"])), active if s["active"] else "quiet",
             "n/a" if s["value"] is None else f"{s['value']:.4g}",
             "n/a" if s["threshold"] is None else f"{s['threshold']:.4g}", escape(s["at"][:19])]
            for s in report.signals]  # fmt: skip
    return _table(["Detector", "Arm", "State", "Value", "Threshold", "At (UTC)"], rows, "signals")


def render_html(report: Report) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    colors = {arm: arm_color(i) for i, arm in enumerate(report.arms)}
    v = report.verdict
    color = _ACTION_COLORS.get(str(v.action), "#455a64")
    reasons = "".join(f"<li>{escape(r)}</li>" for r in v.reasons)
    cost_text, cost_charts = _cost_section(report, colors)
    charts = [*_score_charts(report, colors), _latency_chart(report, colors), *_time_charts(report, colors)]
    srm = report.srm
    srm_text = (
        "No configured weights: sample-ratio check not possible."
        if srm is None
        else f"{'MISMATCH' if srm.active else 'OK'}: p = {srm.value:.3g} (threshold {srm.threshold:g}); "
        f"observed {srm.evidence.get('observed')}, expected shares {srm.evidence.get('expected_share')}."
    )
    stats = report.comparison
    since = report.since.isoformat() if report.since else "the first recorded request"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>tunewatch report: {escape(report.experiment)}</title><style>{_CSS}</style></head>
<body><main>
<h1>tunewatch report: {escape(report.experiment)}</h1>
<div class="meta">{escape(report.control)} (control) vs {escape(report.treatment)} (treatment) · stage
<b>{escape(report.stage)}</b> · data since {escape(since)} ·
generated {escape(report.generated_at.isoformat())}</div>
<div class="card verdict" id="verdict" style="--c:{color}">
<div class="action">{escape(str(v.action).replace("_", " "))}</div>
<ul>{reasons}</ul></div>
<h2>Base vs fine-tune</h2>{_comparison(report)}
<p class="small">{100 * (1 - stats.alpha):.0f}% anytime-valid intervals (valid however often the report is
looked at), simultaneous over {stats.k_metrics} metrics (Bonferroni).
Improvement = {escape(report.treatment)} / {escape(report.control)} - 1;
for latency and cost, negative is better.
Not enough data: {escape(", ".join(stats.insufficient) or "none")}.</p>
<h2>Arms</h2>{_arms(report)}
<h2>In-domain vs out-of-domain quality (overfitting check)</h2>{_domains(report)}
<h2>Cost and payback</h2>{cost_text}<div class="charts">{"".join(cost_charts)}</div>
<h2>Charts</h2><div class="charts">{"".join(charts)}</div>
<h2>Sample-ratio check</h2><p>{escape(srm_text)}</p>
<h2>Detector signals (latest run)</h2>{_signals(report)}
<p class="small">Generated by tunewatch. This file is self-contained: it needs no network.</p>
</main></body></html>
"""
