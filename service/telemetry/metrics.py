"""Every Prometheus metric of tunewatch, defined once.

Two kinds live here:

* Hot-path metrics (requests, durations, tokens, cost) are counted in plain Python numbers in an
  :class:`ArmStats` per (experiment, arm), bound once at start-up, and folded into the registry by
  :class:`HotPathCollector` when ``/metrics`` is scraped: an update costs a few attribute writes,
  where a client_python child costs a lock per call (``../shared/notes/python-proxy-speed.md``).
* Off-path metrics (quality scores, samples, feedback, alerts, webhooks, weights) are ordinary
  client_python objects, updated by jobs.

Labels come from closed sets: configured experiments and arms, the ``STATUS_CODES`` below, the
``StrEnum`` members of the packages that set them. Unknown values become ``other``.

Imports nothing of ours: gateway and jobs import it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "ALERTS_FIRING",
    "ARM_WEIGHT",
    "FEEDBACK",
    "JOB_RUNS",
    "JUDGE_CALLS",
    "OUT_OF_DOMAIN",
    "QUALITY_SCORE",
    "RECORDS_DROPPED",
    "RECORDS_WRITTEN",
    "SAMPLES",
    "SCORER_BACKLOG",
    "SIGNAL_VALUE",
    "WEBHOOK_DELIVERIES",
    "ArmStats",
    "HotPathCollector",
    "status_label",
]

#: LLM latencies: tens of ms (cached, tiny) to minutes (long generations).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0, 120.0)
#: time to first token: earlier and narrower
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
#: what the proxy itself adds: tens of microseconds to milliseconds
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
SCORE_BUCKETS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)

#: status codes that get their own label value; anything else becomes its class (``4xx``).
STATUS_CODES = frozenset(
    {200, 400, 401, 403, 404, 405, 408, 409, 413, 422, 429, 499, 500, 502, 503, 504}
)
_STATUS_LABEL = {c: str(c) for c in STATUS_CODES}


def status_label(status: int) -> str:
    """The bounded label value of an HTTP status (``"429"``, or ``"5xx"`` for an unusual one)."""
    return _STATUS_LABEL.get(status) or f"{status // 100}xx"


class _Hist:
    """A histogram in plain numbers: ``counts[i]`` observations fell in bucket ``i`` (the last: +Inf)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class ArmStats:
    """Hot-path counters of one (experiment, arm); owned by the event loop thread.

    Not thread-safe by design: only the loop writes, and a scrape reads whole numbers.
    """

    __slots__ = (
        "arm",
        "completion_tokens",
        "cost_usd",
        "duration",
        "experiment",
        "overhead",
        "prompt_tokens",
        "requests",
        "ttft",
        "upstream",
    )

    def __init__(self, experiment: str, arm: str) -> None:
        self.experiment = experiment
        self.arm = arm
        #: (status label, stream "true"/"false") -> count
        self.requests: dict[tuple[str, str], int] = {}
        self.duration = {"true": _Hist(LATENCY_BUCKETS), "false": _Hist(LATENCY_BUCKETS)}
        self.ttft = _Hist(TTFT_BUCKETS)
        self.upstream = _Hist(LATENCY_BUCKETS)
        self.overhead = _Hist(OVERHEAD_BUCKETS)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0

    def count(self, status: int, stream: bool) -> None:
        key = (_STATUS_LABEL.get(status) or f"{status // 100}xx", "true" if stream else "false")
        self.requests[key] = self.requests.get(key, 0) + 1


class HotPathCollector(Collector):
    """Folds every bound :class:`ArmStats` into the registry at scrape time."""

    def __init__(self) -> None:
        self._stats: dict[tuple[str, str], ArmStats] = {}

    def bind(self, experiment: str, arm: str) -> ArmStats:
        """The counters of (experiment, arm), created once; the hot path keeps the object."""
        key = (experiment, arm)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = ArmStats(experiment, arm)
        return stats

    def reset(self) -> None:
        """Forget every bound arm (tests build several apps in one process)."""
        self._stats.clear()

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        stats = list(self._stats.values())
        yield from _requests(stats)
        yield from _histograms(stats)
        tokens = CounterMetricFamily(
            "tunewatch_tokens_total", "Tokens reported by the upstream's usage.",
            labels=["experiment", "arm", "kind"],
        )
        cost = CounterMetricFamily(
            "tunewatch_cost_usd_total", "Cost in USD from the usage and the upstream's price table.",
            labels=["experiment", "arm"],
        )
        for s in stats:
            tokens.add_metric([s.experiment, s.arm, "prompt"], s.prompt_tokens)
            tokens.add_metric([s.experiment, s.arm, "completion"], s.completion_tokens)
            cost.add_metric([s.experiment, s.arm], s.cost_usd)
        yield tokens
        yield cost


def _requests(stats: Iterable[ArmStats]) -> Iterator[CounterMetricFamily]:
    fam = CounterMetricFamily(
        "tunewatch_requests_total",
        "Proxied chat completions by experiment, arm, HTTP status and stream mode.",
        labels=["experiment", "arm", "code", "stream"],
    )
    for s in stats:
        for (code, stream), n in sorted(s.requests.items()):
            fam.add_metric([s.experiment, s.arm, code, stream], n)
    yield fam


def _histograms(stats: list[ArmStats]) -> Iterator[HistogramMetricFamily]:
    duration = HistogramMetricFamily(
        "tunewatch_request_duration_seconds",
        "Time from the request's arrival to its last byte sent, by experiment, arm and stream mode.",
        labels=["experiment", "arm", "stream"],
    )
    ttft = HistogramMetricFamily(
        "tunewatch_time_to_first_token_seconds",
        "Time from the request's arrival to the first content chunk sent (streams only).",
        labels=["experiment", "arm"],
    )
    upstream = HistogramMetricFamily(
        "tunewatch_upstream_duration_seconds",
        "Time from the upstream request sent to its last byte received.",
        labels=["experiment", "arm"],
    )
    overhead = HistogramMetricFamily(
        "tunewatch_proxy_overhead_seconds",
        "What the proxy added: request duration less the time spent waiting on the upstream.",
        labels=["experiment", "arm"],
    )
    for s in stats:
        for stream, hist in s.duration.items():
            duration.add_metric([s.experiment, s.arm, stream], hist.buckets(), hist.total)
        ttft.add_metric([s.experiment, s.arm], s.ttft.buckets(), s.ttft.total)
        upstream.add_metric([s.experiment, s.arm], s.upstream.buckets(), s.upstream.total)
        overhead.add_metric([s.experiment, s.arm], s.overhead.buckets(), s.overhead.total)
    yield from (duration, ttft, upstream, overhead)


HOT_PATH = HotPathCollector()
REGISTRY.register(HOT_PATH)

# --- off the hot path: client_python objects -------------------------------------------------

RECORDS_DROPPED = Counter(
    "tunewatch_records_dropped_total",
    "Request records dropped because the recorder's queue was full (the client was still served).",
)
RECORDS_WRITTEN = Counter(
    "tunewatch_records_written_total",
    "Request records written to the database by the batch writer.",
)
RECORDER_WRITE_ERRORS = Counter(
    "tunewatch_recorder_write_errors_total",
    "Failed batch writes (the batch is kept and retried with backoff).",
)
RECORDER_QUEUE = Gauge(
    "tunewatch_recorder_queue_records",
    "Records waiting in the recorder's queue and the writer's pending batch.",
)
QUALITY_SCORE = Histogram(
    "tunewatch_quality_score",
    "LLM-as-judge scores (1-5) of sampled responses, by evaluator.",
    ["experiment", "arm", "evaluator"],
    buckets=SCORE_BUCKETS,
)
SAMPLES = Counter(
    "tunewatch_samples_total",
    "Sampled responses by scoring state (sampled, scored, failed).",
    ["experiment", "arm", "state"],
)
SCORER_BACKLOG = Gauge(
    "tunewatch_scorer_backlog_samples",
    "Sampled responses waiting to be scored.",
    ["experiment"],
)
JUDGE_CALLS = Counter(
    "tunewatch_judge_calls_total",
    "Evaluator calls to the judge by evaluator and outcome (ok, error, timeout, invalid).",
    ["evaluator", "outcome"],
)
OUT_OF_DOMAIN = Counter(
    "tunewatch_out_of_domain_total",
    "Requests whose last user message is far from the fine-tuning reference set.",
    ["experiment", "arm"],
)
FEEDBACK = Counter(
    "tunewatch_feedback_total",
    "User feedback on served requests, by sentiment (positive, neutral, negative).",
    ["experiment", "arm", "sentiment"],
)
SIGNAL_VALUE = Gauge(
    "tunewatch_signal_value",
    "The latest value computed by a drift detector (see the signals table for its evidence).",
    ["experiment", "arm", "detector"],
)
SIGNAL_ACTIVE = Gauge(
    "tunewatch_signal_active",
    "1 while a detector's condition holds for an experiment and arm, else 0.",
    ["experiment", "arm", "detector"],
)
ALERTS_FIRING = Gauge(
    "tunewatch_alerts_firing",
    "tunewatch's own alerts currently firing.",
    ["alert", "experiment"],
)
WEBHOOK_DELIVERIES = Counter(
    "tunewatch_webhook_deliveries_total",
    "Alert webhook delivery attempts by result (delivered, retry, failed).",
    ["result"],
)
ARM_WEIGHT = Gauge(
    "tunewatch_arm_weight",
    "The share of traffic an arm receives now (after the stage is applied).",
    ["experiment", "arm"],
)
JOB_RUNS = Counter(
    "tunewatch_job_runs_total",
    "Scheduled job runs by job name and outcome (ok, error, skipped).",
    ["name", "outcome"],
)
