"""tunewatch's Grafana dashboards as code (grafana-foundation-sdk), rendered to ``grafana/dashboards/``.

``tunewatch-experiment.json`` shows one experiment (variable ``experiment``): split and weights,
requests and errors, latency and TTFT, proxy overhead, judge scores against the threshold,
out-of-domain share, feedback, cost, alerts. ``tunewatch-service.json`` shows tunewatch's health.

Usage, from the repository root::

    python grafana/dashboards.py           # rewrite the JSON files
    python grafana/dashboards.py --check   # exit 1 if the committed JSON is not what this generates

Fast panels read the raw metrics over ``$__rate_interval``; slow windows (30m/1h/1d) read the
recording rules of ``prometheus/rules/``, so panels show what the alerts evaluate.
``grafana/queries.py`` lists every query with the variables substituted, for tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

__all__ = ["DASHBOARDS", "OUTPUT_DIR", "QUALITY_THRESHOLD", "generate", "main", "render"]

OUTPUT_DIR = Path(__file__).resolve().parent / "dashboards"
#: the default deployment threshold drawn on the score panel (tunewatch's own threshold per
#: evaluator is configured in the experiments file; its detector drives QualityBelowThreshold)
QUALITY_THRESHOLD = 3.5
#: the latency alert's ratio (FineTuneLatencyAboveBase)
LATENCY_RATIO_THRESHOLD = 1.1

_DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
_EXP = 'experiment="$experiment"'
_RI = "$__rate_interval"

Target = tuple[str, str]  # (PromQL expression, legend format)


class _Panels:
    """Numbers panels and targets in order, so the JSON is stable and every panel id unique."""

    def __init__(self) -> None:
        self._next_id = 1

    def _id(self) -> int:
        n = self._next_id
        self._next_id += 1
        return n

    @staticmethod
    def _targets(
        targets: Sequence[Target], *, instant: bool = False
    ) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
        out: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
        for i, (expr, legend) in enumerate(targets):
            q = prom.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i)).datasource(_DS)
            out.append(q.instant() if instant else q.range())
        return out

    def row(self, title: str) -> db.Row:
        return db.Row(title).id(self._id())

    def series(
        self, title: str, description: str, unit: str, targets: Sequence[Target], *, span: int = 12,
        threshold: tuple[float, str] | None = None, min_val: float | None = None,
        max_val: float | None = None, stack: bool = False,
    ) -> timeseries.Panel:
        """A time series panel; ``threshold`` = (value, colour above it) drawn as a dashed line."""
        panel = (
            timeseries.Panel().id(self._id()).title(title).description(description).datasource(_DS)
            .unit(unit).span(span).height(8).line_width(1).fill_opacity(10)
            .legend(
                cb.VizLegendOptions()
                .display_mode(cm.LegendDisplayMode.TABLE)
                .placement(cm.LegendPlacement.BOTTOM)
                .show_legend(True)
                .calcs(["lastNotNull", "max"])
            )
            .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
            .targets(self._targets(targets))
        )
        if stack:
            panel = panel.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        if min_val is not None:
            panel = panel.min(min_val)
        if max_val is not None:
            panel = panel.max(max_val)
        if threshold is not None:
            value, colour = threshold
            panel = panel.thresholds(
                db.ThresholdsConfig()
                .mode(dm.ThresholdsMode.ABSOLUTE)
                .steps([dm.Threshold(color="green", value=None), dm.Threshold(color=colour, value=value)])
            ).thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
        return panel

    def stat(
        self, title: str, description: str, unit: str, targets: Sequence[Target], *, span: int = 6,
        height: int = 8, mappings: dict[str, tuple[str, str]] | None = None,
        threshold: tuple[float, str] | None = None,
    ) -> stat.Panel:
        """A single-value panel of the latest value; ``mappings`` = {value: (text, colour)}."""
        panel = (
            stat.Panel().id(self._id()).title(title).description(description).datasource(_DS)
            .unit(unit).span(span).height(height)
            .graph_mode(cm.BigValueGraphMode.NONE)
            .color_mode(cm.BigValueColorMode.BACKGROUND)
            .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .targets(self._targets(targets, instant=True))
        )
        steps = [dm.Threshold(color="green", value=None)]
        if threshold is not None:
            steps.append(dm.Threshold(color=threshold[1], value=threshold[0]))
        panel = panel.thresholds(db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
        if mappings:
            panel = panel.mappings(
                [dm.ValueMap(options={k: dm.ValueMappingResult(text=t, color=c, index=i)
                                      for i, (k, (t, c)) in enumerate(mappings.items())})]
            )
        return panel


def _base(title: str, uid: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["tunewatch"])
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .readonly()
        .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )


def _quantiles(metric: str, by: str, quantiles: Sequence[float], matcher: str = _EXP) -> list[Target]:
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{matcher}}}[{_RI}])))",
            f"{{{{{by.split(', ')[-1]}}}}} p{round(q * 100)}",
        )
        for q in quantiles
    ]


def experiment_dashboard() -> dm.Dashboard:
    """The per-experiment overview: is the fine-tune better than the base, and is it healthy?"""
    p = _Panels()
    d = _base(
        "tunewatch: experiment",
        "tunewatch-experiment",
        "Base vs fine-tuned on the same traffic: split, errors, latency, judge scores, drift, "
        "feedback, cost and alerts. Runbooks: docs/runbooks.md.",
    ).with_variable(
        db.QueryVariable("experiment")
        .label("Experiment")
        .datasource(_DS)
        .query("label_values(tunewatch_requests_total, experiment)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    share = (
        f"sum by (arm) (rate(tunewatch_requests_total{{{_EXP}}}[{_RI}])) / ignoring (arm) group_left () "
        f"sum (rate(tunewatch_requests_total{{{_EXP}}}[{_RI}]))"
    )
    d = d.with_row(p.row("Traffic split")).with_panel(p.stat(
        "Arm weights", "The share of traffic each arm receives now, after the stage is applied.",
        "percentunit", [(f"tunewatch_arm_weight{{{_EXP}}}", "{{arm}}")], span=8,
    )).with_panel(p.series(
        "Observed traffic share", "The share of requests each arm served (compare with the weights).",
        "percentunit", [(share, "{{arm}}")], span=16, min_val=0, max_val=1, stack=True,
    ))

    total = f"sum by (arm) (rate(tunewatch_requests_total{{{_EXP}}}[{_RI}]))"
    # `or total * 0`: 0 rather than no data before the first 5xx
    fivexx = f'sum by (arm) (rate(tunewatch_requests_total{{{_EXP},code=~"5.."}}[{_RI}]))'
    errors = f"({fivexx} or {total} * 0) / {total}"
    d = d.with_row(p.row("Requests and errors")).with_panel(p.series(
        "Requests per arm and status", "Proxied chat completions per second by arm and HTTP status.",
        "reqps", [(f"sum by (arm, code) (rate(tunewatch_requests_total{{{_EXP}}}[{_RI}]))",
                   "{{arm}} {{code}}")],
    )).with_panel(p.series(
        "5xx error ratio per arm", "Share of requests answered with a 5xx (TunewatchHighErrorRate: 5%).",
        "percentunit", [(errors, "{{arm}}")], threshold=(0.05, "red"), min_val=0,
    ))

    p95 = "experiment_arm:tunewatch_request_duration_seconds:p95_rate5m"
    ratio = (
        f'{p95}{{experiment="$experiment",arm!="base"}} / ignoring (arm) group_left () '
        f'{p95}{{experiment="$experiment",arm="base"}}'
    )
    d = d.with_row(p.row("Latency")).with_panel(p.series(
        "Request duration p50 / p95 per arm", "From the request's arrival to its last byte, streams too.",
        "s", _quantiles("tunewatch_request_duration_seconds", "arm", (0.5, 0.95)),
    )).with_panel(p.series(
        "Time to first token p50 / p95 per arm", "From the request's arrival to the first content chunk.",
        "s", _quantiles("tunewatch_time_to_first_token_seconds", "arm", (0.5, 0.95)),
    )).with_panel(p.series(
        "Fine-tune p95 / base p95", "FineTuneLatencyAboveBase fires above 1.1 (5m windows).",
        "none", [(ratio, "{{arm}} / base")], threshold=(LATENCY_RATIO_THRESHOLD, "red"),
    )).with_panel(p.series(
        "Proxy overhead p99 per arm", "What tunewatch adds to a request (TunewatchProxyOverheadHigh: 25 ms).",
        "s", _quantiles("tunewatch_proxy_overhead_seconds", "arm", (0.99,)), threshold=(0.025, "red"),
    ))

    mean = f"experiment_arm_evaluator:tunewatch_quality_score:mean_rate1h{{{_EXP}}}"
    d = d.with_row(p.row("Quality")).with_panel(p.series(
        "Mean judge score per evaluator and arm (1h)",
        f"LLM-as-judge scores (1-5) of sampled responses; dashed: the default threshold {QUALITY_THRESHOLD}. "
        "Each evaluator's threshold is configured in the experiments file.",
        "none", [(mean, "{{evaluator}} {{arm}}")],
        span=16, threshold=(QUALITY_THRESHOLD, "transparent"), min_val=1, max_val=5,
    )).with_panel(p.stat(
        "Detector signals", "1 while a tunewatch detector's condition holds (quality, drift, latency, ...).",
        "none", [(f"max by (arm, detector) (tunewatch_signal_active{{{_EXP}}})", "{{detector}} {{arm}}")],
        span=8, mappings={"0": ("ok", "green"), "1": ("ACTIVE", "red")}, threshold=(1, "red"),
    )).with_panel(p.series(
        "Samples by scoring state", "Sampled responses per minute by state (sampled, scored, failed).",
        "none", [(f"sum by (arm, state) (rate(tunewatch_samples_total{{{_EXP}}}[{_RI}])) * 60",
                  "{{arm}} {{state}}")], span=24,
    ))

    ood = "experiment_arm:tunewatch_out_of_domain:ratio_rate"
    neg = "experiment_arm:tunewatch_feedback_negative:ratio_rate"
    d = d.with_row(p.row("Drift, feedback and cost")).with_panel(p.series(
        "Out-of-domain share per arm",
        "Requests far from the fine-tuning data, last 30m and last day (the baseline). "
        "OutOfDomainShareRising: above 20% and 1.5x the baseline.",
        "percentunit", [(f"{ood}30m{{{_EXP}}}", "{{arm}} 30m"), (f"{ood}1d{{{_EXP}}}", "{{arm}} 1d")],
        threshold=(0.2, "orange"), min_val=0,
    )).with_panel(p.series(
        "Feedback per arm", "User feedback per hour by sentiment.", "none",
        [(f"sum by (arm, sentiment) (rate(tunewatch_feedback_total{{{_EXP}}}[{_RI}])) * 3600",
          "{{arm}} {{sentiment}}")],
    )).with_panel(p.series(
        "Negative feedback ratio per arm",
        "Negative share of the feedback, last hour and last day (NegativeFeedbackRising: above 25% "
        "and 1.5x the day).",
        "percentunit", [(f"{neg}1h{{{_EXP}}}", "{{arm}} 1h"), (f"{neg}1d{{{_EXP}}}", "{{arm}} 1d")],
        threshold=(0.25, "orange"), min_val=0,
    )).with_panel(p.series(
        "Cost per request per arm", "USD per successful request over the last hour (usage x price table).",
        "currencyUSD", [(f"experiment_arm:tunewatch_cost_usd_per_request:ratio_rate1h{{{_EXP}}}", "{{arm}}")],
        min_val=0,
    ))

    return d.with_row(p.row("Alerts")).with_panel(p.stat(
        "Prometheus alerts firing", "Alerts of prometheus/rules/tunewatch-alerts.yml for this experiment.",
        "none", [(f'count by (alertname, arm) (ALERTS{{alertstate="firing",{_EXP}}}) or on () vector(0)',
                  "{{alertname}} {{arm}}")],
        span=12, threshold=(1, "red"),
    )).with_panel(p.stat(
        "tunewatch alerts firing", "tunewatch's own alerts (signed webhooks) firing for this experiment.",
        "none", [(f"sum by (alert) (tunewatch_alerts_firing{{{_EXP}}}) or on () vector(0)", "{{alert}}")],
        span=12, threshold=(1, "red"),
    )).build()


def service_dashboard() -> dm.Dashboard:
    """The service's own health: is tunewatch scraped, recording, scoring and delivering?"""
    p = _Panels()
    d = _base(
        "tunewatch: service health",
        "tunewatch-service",
        "tunewatch itself: scrape, traffic, recorder, scorer, judge, jobs, webhooks, overhead, process. "
        "Runbooks: docs/runbooks.md.",
    )
    d = d.with_row(p.row("Availability and traffic")).with_panel(p.stat(
        "Scrape up", "1 when Prometheus scrapes the replica (TunewatchDown after 2m at 0).", "none",
        [('up{job="tunewatch"}', "{{instance}}")], span=6,
        mappings={"0": ("DOWN", "red"), "1": ("up", "green")},
    )).with_panel(p.series(
        "Requests by status", "Proxied chat completions per second, every experiment, by status.", "reqps",
        [(f"sum by (code) (rate(tunewatch_requests_total[{_RI}]))", "{{code}}")], span=18, stack=True,
    ))

    d = d.with_row(p.row("Recorder")).with_panel(p.series(
        "Records written and dropped",
        "Request records per second: written by the batch writer, dropped when the queue is full "
        "(TunewatchRecordsDropped), failed batch writes.",
        "ops",
        [(f"sum (rate(tunewatch_records_written_total[{_RI}]))", "written"),
         (f"sum (rate(tunewatch_records_dropped_total[{_RI}]))", "dropped"),
         (f"sum (rate(tunewatch_recorder_write_errors_total[{_RI}]))", "write errors")],
    )).with_panel(p.series(
        "Recorder queue", "Records waiting in the recorder's queue and the writer's pending batch.", "none",
        [("sum by (instance) (tunewatch_recorder_queue_records)", "{{instance}}")],
    ))

    d = d.with_row(p.row("Scoring")).with_panel(p.series(
        "Scorer backlog", "Sampled responses waiting to be scored (TunewatchScorerBacklogGrowing).", "none",
        [("max by (experiment) (tunewatch_scorer_backlog_samples)", "{{experiment}}")],
    )).with_panel(p.series(
        "Judge calls by outcome", "Evaluator calls to the judge per minute by evaluator and outcome.", "none",
        [(f"sum by (evaluator, outcome) (rate(tunewatch_judge_calls_total[{_RI}])) * 60",
          "{{evaluator}} {{outcome}}")],
    )).with_panel(p.series(
        "Judge failure ratio (15m)", "Calls with no usable score (TunewatchJudgeFailures above 20%).",
        "percentunit", [("evaluator:tunewatch_judge_calls_failed:ratio_rate15m", "{{evaluator}}")],
        threshold=(0.2, "red"), min_val=0,
    ))

    d = d.with_row(p.row("Jobs and webhooks")).with_panel(p.series(
        "Scheduled job runs",
        "Job runs per hour by scheduled job and outcome.",
        "none",
        [(f"sum by (name, outcome) (rate(tunewatch_job_runs_total[{_RI}])) * 3600",
          "{{name}} {{outcome}}")],
    )).with_panel(p.series(
        "Webhook deliveries by result",
        "tunewatch's alert webhook attempts per hour: delivered, retry, failed "
        "(TunewatchWebhookDeliveriesFailing).",
        "none", [(f"sum by (result) (rate(tunewatch_webhook_deliveries_total[{_RI}])) * 3600", "{{result}}")],
    ))

    d = d.with_row(p.row("Overhead and upstreams")).with_panel(p.series(
        "Proxy overhead p50 / p99", "What tunewatch adds to a request, over every experiment and arm.", "s",
        _quantiles("tunewatch_proxy_overhead_seconds", "job", (0.5, 0.99), matcher='job="tunewatch"'),
        threshold=(0.025, "red"),
    )).with_panel(p.series(
        "Upstream duration p95", "Time the upstream deployments take, by experiment and arm.", "s",
        [(f"histogram_quantile(0.95, sum by (experiment, arm, le) "
          f"(rate(tunewatch_upstream_duration_seconds_bucket[{_RI}])))", "{{experiment}} {{arm}}")],
    ))

    return d.with_row(p.row("Process")).with_panel(p.series(
        "CPU", "CPU seconds per second of each replica (one event loop: 1.0 is saturated).", "percentunit",
        [(f'rate(process_cpu_seconds_total{{job="tunewatch"}}[{_RI}])', "{{instance}}")],
    )).with_panel(p.series(
        "Resident memory", "Resident set size of each replica.", "bytes",
        [('process_resident_memory_bytes{job="tunewatch"}', "{{instance}}")],
    )).with_panel(p.stat(
        "Service alerts firing", "Alerts on tunewatch's own health firing now.", "none",
        [('count by (alertname) (ALERTS{alertstate="firing",alertname=~"Tunewatch.*"}) or on () vector(0)',
          "{{alertname}}")],
        span=24, height=5, threshold=(1, "red"),
    )).build()


DASHBOARDS: dict[str, Callable[[], dm.Dashboard]] = {
    "tunewatch-experiment.json": experiment_dashboard,
    "tunewatch-service.json": service_dashboard,
}


def render(dashboard: dm.Dashboard) -> str:
    """The dashboard as stable JSON text: sorted keys, two-space indent, final newline."""
    return json.dumps(dashboard, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """Every dashboard's file name and JSON text (pure: writes nothing)."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards into ``OUTPUT_DIR``, or with ``--check`` compare; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the committed JSON, write nothing")
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = args.out / name
        if args.check:
            stale += [] if path.is_file() and path.read_text(encoding="utf-8") == text else [name]
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run `python grafana/dashboards.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
