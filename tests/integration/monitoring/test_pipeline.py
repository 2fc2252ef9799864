"""End to end: the service's metrics through the repo's Prometheus and Alertmanager to a receiver.

Everything on loopback, everything real: the base, fine-tuned and judge simulators (the fine-tune
made slower than the base), the whole service in a thread of this process (``build_service``: a
migrated SQLite database, the recorder, the scheduler with the scorer, out-of-domain and detector
jobs), Prometheus (Debian's package) scraping it every second with the repo's rules (``for:``
shortened) and sending to Alertmanager (Debian's package) with the repo's routes, whose receivers
point at an HTTP receiver here. Traffic goes through the official ``openai`` SDK, both arms,
streamed and not, in-domain and off-topic, with feedback.

Asserted: ``FineTuneLatencyAboveBase`` fires in Prometheus and reaches the receiver through
Alertmanager with the admin key as bearer token; then every Grafana panel's query returns data
from that Prometheus. tunewatch's own alerting is configured too (a generic receiver and a rule
without ``for``), so the webhook-deliveries panel has deliveries to show.

Config rewriting, process handling and the receiver are those of ``test_prometheus`` and
``test_alertmanager``.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from service.app import build_service, components_of
from service.config import AlertRule, AlertsConfig, DeliveryPolicy, ExperimentsFile, ReceiverConfig
from service.demo import demo_experiments
from service.drift.commands import import_reference
from service.drift.references import store_reference
from service.simulator import RunningSimulator, SimConfig, demo_queries, demo_reference_path, start_in_thread
from tests.integration.monitoring.test_alertmanager import Receiver
from tests.integration.monitoring.test_alertmanager import rewritten_config as alertmanager_config
from tests.integration.monitoring.test_prometheus import api, rewritten_config
from tests.support import proxy as support  # its `settings_for_tests` would be collected as a test here
from tests.support.binaries import free_port, load_queries, ready, running
from tests.support.proxy import ADMIN_KEY, CLIENT_KEY, RunningProxy
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

#: requests sent, about half per arm: the service's p95 detector needs 100 per arm
REQUESTS = 300
WORKERS = 6
HOOK_SECRET_ENV = "TUNEWATCH_TEST_PIPELINE_HOOK_SECRET"
LATENCY_ALERT = "FineTuneLatencyAboveBase"


def _binaries() -> tuple[str, str]:
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if prometheus is None or alertmanager is None:
        pytest.skip("Prometheus or Alertmanager is not installed: `make system-deps-test` installs "
                    "Debian's prometheus and prometheus-alertmanager packages")
    return prometheus, alertmanager


@contextmanager
def _receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(5)


def _simulators(stack: ExitStack) -> tuple[RunningSimulator, RunningSimulator, RunningSimulator]:
    """Base fast, fine-tune ~10x slower to its first token and slower to decode, judge quick."""
    base = stack.enter_context(start_in_thread("base", SimConfig(seed=1, time_scale=0.05)))
    fine_tuned = stack.enter_context(start_in_thread("fine_tuned", SimConfig(
        seed=1, time_scale=0.05, fine_tuned_ttft_s=4.0, fine_tuned_tokens_per_s=40.0)))
    judge = stack.enter_context(start_in_thread("judge", SimConfig(seed=1, time_scale=0.01)))
    return base, fine_tuned, judge


def _experiments(base: str, fine_tuned: str, judge: str, hook_url: str) -> ExperimentsFile:
    """The demo experiment with tunewatch's own alerting on: any active detector notifies at once."""
    alerts = AlertsConfig(
        receivers=[ReceiverConfig(name="pipeline", url=hook_url, secret_env=HOOK_SECRET_ENV)],
        default_rule=AlertRule(for_s=0),
        delivery=DeliveryPolicy(backoff_base_s=1.0, backoff_max_s=2.0),
    )
    return demo_experiments(base, fine_tuned, judge).model_copy(update={"alerts": alerts})


def _start_alertmanager(stack: ExitStack, binary: str, receiver: Receiver, directory: Path) -> str:
    """Alertmanager with the repo's routes, its receivers pointed at ``receiver``; ``host:port``."""
    directory.mkdir()
    credentials = directory / "admin_key"
    credentials.write_text(ADMIN_KEY + "\n", encoding="utf-8")
    config = directory / "alertmanager.yml"
    config.write_text(yaml.safe_dump(alertmanager_config(receiver.url, credentials)), encoding="utf-8")
    address = f"127.0.0.1:{free_port()}"
    log = directory / "alertmanager.log"
    proc = stack.enter_context(running(
        [binary, f"--config.file={config}", f"--storage.path={directory / 'data'}",
         f"--web.listen-address={address}", "--cluster.listen-address="], log))
    wait_for(lambda: proc.poll() is not None or ready(f"http://{address}"), timeout_s=30,
             what="Alertmanager ready")
    assert proc.poll() is None, log.read_text()
    return address


def _start_prometheus(stack: ExitStack, binary: str, target: str, alertmanager: str, directory: Path) -> str:
    """Prometheus scraping ``target`` with the repo's rules, alerting ``alertmanager``; its URL."""
    directory.mkdir()
    config = rewritten_config(target, directory, alertmanager=alertmanager)
    url = f"http://127.0.0.1:{free_port()}"
    log = directory / "prometheus.log"
    proc = stack.enter_context(running(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address={url.removeprefix('http://')}"], log))
    wait_for(lambda: proc.poll() is not None or ready(url), timeout_s=30, what="Prometheus ready")
    assert proc.poll() is None, log.read_text()
    # the counters must be seen at zero, or the first traffic is missing from every rate()
    wait_for(lambda: [s for s in api(url, "query", query='up{job="tunewatch"} == 1')["result"]],
             timeout_s=30, what="the first scrape of tunewatch")
    return url


def _drive_traffic(proxy: RunningProxy) -> dict[str, int]:
    """``REQUESTS`` chat completions from ``WORKERS`` threads, feedback on a third; requests per arm."""
    queries = demo_queries()
    rng = random.Random(1)
    plan = [(i, *rng.choice(queries), i % 2 == 0) for i in range(REQUESTS)]

    def one(client: openai.OpenAI, i: int, text: str, in_domain: bool, stream: bool) -> str:
        messages: Any = [{"role": "user", "content": text}]
        raw = client.chat.completions.with_raw_response.create(
            model="demo", messages=messages, user=f"customer-{i:03d}", stream=stream)
        if stream:
            for _ in raw.parse():
                pass
        else:
            raw.parse()
        arm = raw.headers["x-tunewatch-arm"]
        if i % 3 == 0:
            # happier with the fine-tune in domain and with the base off-topic, as the demo's users
            thumbs = "up" if (arm == "fine_tuned") == in_domain else "down"
            client.post("/feedback", cast_to=object, body={"request_id": raw.headers["x-request-id"],
                                                           "thumbs": thumbs})
        return arm

    with (openai.OpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0, timeout=30) as client,
          ThreadPoolExecutor(WORKERS, thread_name_prefix="pipeline-traffic") as pool):
        arms = list(pool.map(lambda step: one(client, *step), plan, timeout=60))
    return {arm: arms.count(arm) for arm in set(arms)}


def _firing(prometheus: str) -> list[dict[str, Any]]:
    return [a for a in api(prometheus, "alerts")["alerts"]
            if a["labels"]["alertname"] == LATENCY_ALERT and a["state"] == "firing"]


def test_the_slow_fine_tune_pages_through_alertmanager_and_fills_every_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prometheus_binary, alertmanager_binary = _binaries()
    monkeypatch.setenv(HOOK_SECRET_ENV, "pipeline-hook-secret-0123456789")
    settings = support.settings_for_tests(database_url=f"sqlite:///{tmp_path / 'tw.db'}", scheduler_enabled=True,
                                     scorer_interval_s=1, ood_interval_s=1, detectors_interval_s=5,
                                     alerts_interval_s=2, webhooks_interval_s=1)
    with ExitStack() as stack:
        base, fine_tuned, judge = _simulators(stack)
        alertmanager_receiver = stack.enter_context(_receiving())
        tunewatch_receiver = stack.enter_context(_receiving())
        experiments = _experiments(base.url, fine_tuned.url, judge.url, f"{tunewatch_receiver.url}/tunewatch")
        app = build_service(settings, experiments)
        database = components_of(app).database
        assert database is not None
        # the demo experiment's out-of-domain reference, so the out-of-domain job scores queries
        store_reference(database, "demo", import_reference(demo_reference_path()))
        proxy = stack.enter_context(support.running(app, settings))
        alertmanager = _start_alertmanager(stack, alertmanager_binary, alertmanager_receiver,
                                           tmp_path / "alertmanager")
        prometheus = _start_prometheus(stack, prometheus_binary, proxy.url.removeprefix("http://"),
                                       alertmanager, tmp_path / "prometheus")

        per_arm = _drive_traffic(proxy)
        assert min(per_arm.get("base", 0), per_arm.get("fine_tuned", 0)) >= 100, per_arm

        # Prometheus: the fine-tune's p95 is above the base's, on the fine-tune's arm only
        (alert,) = wait_for(lambda: _firing(prometheus), timeout_s=60, interval_s=0.5,
                            what=f"{LATENCY_ALERT} firing in Prometheus")
        assert alert["labels"]["arm"] == "fine_tuned" and alert["labels"]["severity"] == "ticket"
        assert float(alert["value"]) > 1.1

        # Alertmanager: routed as a ticket, posted with the admin key as tunewatch's intake expects
        ticket = (LATENCY_ALERT, "firing", f"Bearer {ADMIN_KEY}")
        try:
            wait_for(lambda: ticket in alertmanager_receiver.alerts("ticket"), timeout_s=30, interval_s=0.2,
                     what=f"{LATENCY_ALERT} at the receiver")
        except AssertionError:
            pytest.fail(f"no {ticket} among the notifications received: {alertmanager_receiver.received!r}")
        (path, _, body) = next(r for r in alertmanager_receiver.received if r[2]["receiver"] == "ticket")
        assert path == "/ticket" and body["commonLabels"]["experiment"] == "demo"

        # Grafana: every panel's query has data, including tunewatch's own webhook deliveries
        queries = load_queries().panel_queries()
        empty: list[str] = []

        def all_filled() -> bool:
            empty[:] = [f"{q.dashboard} / {q.panel_title} / {q.ref_id}: {q.expr}"
                        for q in queries if not api(prometheus, "query", query=q.expr)["result"]]
            return not empty

        try:
            wait_for(all_filled, timeout_s=60, interval_s=1.0, what="every dashboard query to return data")
        except AssertionError:
            pytest.fail("queries without data:\n" + "\n".join(empty))
        # ... which are tunewatch's own detectors agreeing with Prometheus about the fine-tune
        wait_for(lambda: {path for path, _, _ in tunewatch_receiver.received} == {"/tunewatch"}, timeout_s=60,
                 what="tunewatch's own latency alert at its receiver")
        notified = {(b["alert"], b["arm"], b["status"]) for _, _, b in tunewatch_receiver.received}
        assert ("latency_p95_above_control", "fine_tuned", "firing") in notified, notified
