"""Serves tunewatch's real metrics registry, fed with synthetic demo traffic, for a real Prometheus.

``python -m tests.integration.monitoring.metrics_exporter [SECONDS]`` prints
``http://127.0.0.1:PORT`` first, then serves ``/metrics`` while a thread records one second of
traffic per second for both arms of experiment ``demo``: the fine-tuned arm three times slower than
the base, judge scores, feedback, out-of-domain queries, and the quality detector active for
``fine_tuned``. Every metric of ``service.telemetry.metrics`` gets a series, so every dashboard
query has data. It exits by itself after SECONDS (default 300): a test that forgets it loses nothing.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from service.telemetry import metrics as m

ARMS = {"base": 0.3, "fine_tuned": 0.9}  # typical request duration, seconds


def record_one_second(rng: random.Random) -> None:
    for arm, latency in ARMS.items():
        stats = m.HOT_PATH.bind("demo", arm)
        for i in range(5):
            duration = rng.uniform(0.8, 1.2) * latency
            stats.count(200, stream=i % 2 == 0)
            stats.duration["true" if i % 2 == 0 else "false"].observe(duration)
            stats.ttft.observe(duration / 3)
            stats.upstream.observe(duration - 0.0004)
            stats.overhead.observe(0.0004)
            stats.prompt_tokens += 50
            stats.completion_tokens += 120
            stats.cost_usd += 0.0001
            m.OUT_OF_DOMAIN.labels("demo", arm).inc(rng.random() < 0.1)
        m.QUALITY_SCORE.labels("demo", arm, "relevance").observe(rng.choice((3.0, 4.0, 5.0)))
        m.SAMPLES.labels("demo", arm, "scored").inc()
        m.FEEDBACK.labels("demo", arm, rng.choice(("positive", "negative"))).inc()
    m.JUDGE_CALLS.labels("relevance", "ok").inc()
    m.WEBHOOK_DELIVERIES.labels("delivered").inc()
    m.JOB_RUNS.labels("score", "ok").inc()
    m.RECORDS_WRITTEN.inc(10)


def prime() -> None:
    """The gauges a running tunewatch sets from its jobs and admin state."""
    for arm in ARMS:
        m.ARM_WEIGHT.labels("demo", arm).set(0.5)
        active = 1.0 if arm == "fine_tuned" else 0.0
        m.SIGNAL_ACTIVE.labels("demo", arm, "quality_below_threshold").set(active)
        m.SIGNAL_VALUE.labels("demo", arm, "quality_below_threshold").set(3.1 if active else 4.2)
    m.SCORER_BACKLOG.labels("demo").set(3)
    m.ALERTS_FIRING.labels("quality_below_threshold", "demo").set(1)


class Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = generate_latest(REGISTRY)
        self.send_response(200)
        self.send_header("content-type", CONTENT_TYPE_LATEST)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main(seconds: float) -> None:
    prime()
    rng = random.Random(7)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        record_one_second(rng)
        time.sleep(1.0)  # the traffic's pace, not a synchronisation
    server.shutdown()


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 300.0)
